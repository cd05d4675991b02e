# Crypto-ML on the official Airflow image: one image for every Airflow component (api-server,
# scheduler, dag-processor, triggerer, Celery workers), the prediction-engine workers
# (`celery -A crypto_ml worker -Q predict,train,heavy`) and Flower (`celery -A crypto_ml flower`).
#   docker build -t crypto-ml:0.1.0 .
# No secret is baked in: the Fernet key, JWT secret, API secret key and every URL with a password
# come from the environment at run time (docker-compose.yaml, or Kubernetes Secrets in helm/).
# Linted by tests/deploy/test_dockerfile.py (hadolint, zero findings).
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

ARG AIRFLOW_VERSION=3.3.2
LABEL org.opencontainers.image.title="crypto-ml" \
      org.opencontainers.image.description="Crypto-ML: Airflow 3 + Celery prediction engine" \
      org.opencontainers.image.licenses="MIT"

# The image's non-root user (uid 50000, group 0 as OpenShift-style runtimes expect); pip installs
# into its home. Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 50000:0
WORKDIR /opt/airflow

# The versions tested together, with Airflow held at the image's version (the official image's
# advice), then the package itself (dependencies already satisfied).
COPY --chown=50000:0 requirements.txt /opt/crypto-ml/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/crypto-ml/requirements.txt

COPY --chown=50000:0 pyproject.toml README.md /opt/crypto-ml/
COPY --chown=50000:0 crypto_ml /opt/crypto-ml/crypto_ml
RUN pip install --no-cache-dir --no-deps /opt/crypto-ml

COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 plugins /opt/airflow/plugins
COPY --chown=50000:0 airflow.cfg /opt/airflow/airflow.cfg

ENV CRYPTO_ML_ROOT=/opt/airflow \
    AIRFLOW_CONFIG=/opt/airflow/airflow.cfg \
    CRYPTO_ML_HOME=/opt/airflow/crypto_ml \
    PYTHONUNBUFFERED=1
