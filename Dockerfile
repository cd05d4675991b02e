# Crypto-ML on the official Airflow image: one image for every Airflow component (api-server,
# scheduler, dag-processor, triggerer, Celery workers) and for the prediction-engine workers
# (`celery -A crypto_ml worker`). Build: docker build -t crypto-ml .
FROM apache/airflow:3.3.2-python3.11

# The image's non-root user; pip installs into its home.
USER airflow
WORKDIR /opt/airflow

# The versions tested together, then the package itself (dependencies already satisfied).
COPY --chown=airflow:root requirements.txt /opt/crypto-ml/requirements.txt
RUN pip install --no-cache-dir -r /opt/crypto-ml/requirements.txt

COPY --chown=airflow:root pyproject.toml README.md /opt/crypto-ml/
COPY --chown=airflow:root crypto_ml /opt/crypto-ml/crypto_ml
RUN pip install --no-cache-dir --no-deps /opt/crypto-ml

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root airflow.cfg /opt/airflow/airflow.cfg

ENV CRYPTO_ML_ROOT=/opt/airflow \
    AIRFLOW_CONFIG=/opt/airflow/airflow.cfg \
    CRYPTO_ML_HOME=/opt/airflow/crypto_ml \
    PYTHONUNBUFFERED=1
