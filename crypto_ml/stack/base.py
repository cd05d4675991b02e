"""What both Airflow stacks share: the api-server's port and URL, health, and the REST client
(:class:`crypto_ml.stack.follow.AirflowClient`) through which both are driven and followed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from crypto_ml.stack.follow import COIN, MASTER, AirflowClient
from crypto_ml.stack.supervisor import Supervisor


@dataclass
class AirflowStack(Supervisor):
    """An Airflow stack whose api-server listens on 127.0.0.1:``port``."""

    port: int = 8080
    #: Components of ``/api/v2/monitor/health`` that must say healthy before the stack counts as up.
    healthy_components: tuple[str, ...] = ("metadatabase",)
    _client: AirflowClient | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credentials(self) -> tuple[str, str] | None:
        """``(user, password)`` for the REST API's token; ``None``: the all-admins token."""
        return None

    @property
    def client(self) -> AirflowClient:
        """The REST client of this stack (its waits stop when the supervisor gives up)."""
        if self._client is None:
            self._client = AirflowClient(self.base_url, self.credentials(), check=self.check_alive)
        return self._client

    def wait_healthy(self, timeout: float = 180) -> None:
        """Until ``/api/v2/monitor/health`` reports every one of :attr:`healthy_components`."""
        deadline = time.monotonic() + timeout
        health: dict = {}
        while True:
            self.check_alive()
            try:
                health = self.client.health()
                if all(health.get(c, {}).get("status") == "healthy" for c in self.healthy_components):
                    return
            except OSError:  # not listening yet (HTTPError is an OSError too)
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.base_url}/api/v2/monitor/health did not report "
                    f"{', '.join(self.healthy_components)} "
                    f"healthy within {timeout:.0f} s (last answer: {health or 'none'}); "
                    f"see {self.log_dir}/api-server.log"
                )
            time.sleep(1)

    # -- the pipeline through the REST API -----------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """One call of the REST API, not repeated on failure (see :meth:`AirflowClient.api`):
        a caller that measures an outage sees it as it happens."""
        return self.client.api(method, path, body, attempts=1)

    def unpause_pipeline(self, dag_ids: tuple[str, ...] = (COIN, MASTER)) -> dict[str, bool]:
        """Unpause the pipeline DAGs once parsed; every DAG's ``is_paused`` after that."""
        return self.client.unpause(dag_ids)

    def trigger_master(self, logical_date: str | None, conf: dict | None = None) -> str:
        """Unpause both DAGs and trigger ``crypto_ml_master`` for ``logical_date``; its run id."""
        self.unpause_pipeline()
        return self.client.trigger(MASTER, logical_date, conf)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1800, on_poll=None) -> str:
        """Poll the run until it is finished; its final state."""
        return self.client.wait_for_run(dag_id, run_id, timeout=timeout, on_poll=on_poll)

    def task_instances(self, dag_id: str, run_id: str = "~") -> list[dict]:
        """Every task instance of ``dag_id`` (``~``: of all its runs)."""
        return self.client.task_instances(dag_id, run_id)
