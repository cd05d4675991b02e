# Stand-in for apache/airflow:3.3.2-python3.11 where no image registry is reachable: the official
# image's layout and entrypoint rules on a Debian 12 base built from Debian packages
# (tests/deploy/standins/build.py). The project's Dockerfile builds FROM it unchanged
# (--build-arg AIRFLOW_IMAGE=...). What differs from the official image, on purpose:
#   - Debian's Python 3.11 (3.11.2) in a virtualenv at /home/airflow/.local (the official image:
#     python.org's 3.11 under /usr/local, packages installed with PIP_USER=true into the same
#     ~/.local); `pip install` in the project's Dockerfile lands in the same place either way;
#   - Airflow is not pre-installed: the project's Dockerfile installs apache-airflow==3.3.2 with
#     its requirements, as it does on the official image (where that install is a no-op);
#   - no providers beyond what requirements.txt pins; no MySQL/MSSQL client libraries;
#   - the host's CA bundle (TLS to PyPI is intercepted on this machine), PIP_CERT pointing at it.
FROM crypto-ml-standin/debian:bookworm
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_USER_HOME_DIR=/home/airflow \
    AIRFLOW_VERSION=3.3.2 \
    PYTHON_BASE_IMAGE=debian:bookworm \
    PATH=/home/airflow/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    DUMB_INIT_SETSID=1
RUN useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
 && python3 -m venv /home/airflow/.local \
 && mkdir -p /opt/airflow/dags /opt/airflow/logs /opt/airflow/plugins \
 && chown -R 50000:0 /home/airflow /opt/airflow \
 && chmod -R g+rwX /home/airflow /opt/airflow
COPY airflow-entrypoint.sh /entrypoint
RUN chmod 0755 /entrypoint
USER 50000:0
WORKDIR /opt/airflow
EXPOSE 8080
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
