# The project's environment for this shell: `source scripts/env.sh` (after `bash scripts/install.sh`).
# Sets PATH (the .venv's commands first), CRYPTO_ML_ROOT, AIRFLOW_HOME (.airflow/ in the checkout,
# never your ~/airflow, unless you set it) and AIRFLOW_CONFIG (the repo's airflow.cfg), and
# nothing else: no shell option is changed, a failing command afterwards never closes the shell.
# Then `airflow dags trigger ...` and `crypto-ml ...` work on the embedded default.
__crypto_ml_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -x "$__crypto_ml_root/.venv/bin/python" ]; then
    echo "env.sh: error: $__crypto_ml_root/.venv is not installed; run: bash $__crypto_ml_root/scripts/install.sh" >&2
    unset __crypto_ml_root
    return 1 2>/dev/null || exit 1
fi
case ":$PATH:" in
    *":$__crypto_ml_root/.venv/bin:"*) ;;
    *) export PATH="$__crypto_ml_root/.venv/bin:$PATH" ;;
esac
export CRYPTO_ML_ROOT="$__crypto_ml_root"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$__crypto_ml_root/.airflow}"
export AIRFLOW_CONFIG="${AIRFLOW_CONFIG:-$__crypto_ml_root/airflow.cfg}"
mkdir -p "$AIRFLOW_HOME"
unset __crypto_ml_root
