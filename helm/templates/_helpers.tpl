{{/* Names */}}
{{- define "crypto-ml.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "crypto-ml.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: crypto-ml
{{- end -}}

{{/* The labels of one component's objects and pods: (dict "root" $ "component" "scheduler") */}}
{{- define "crypto-ml.componentLabels" -}}
{{ include "crypto-ml.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "scheduler") */}}
{{- define "crypto-ml.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "crypto-ml.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- end -}}

{{- define "crypto-ml.postgresHost" -}}
{{- if .Values.postgresql.enabled -}}
{{ include "crypto-ml.fullname" . }}-postgresql
{{- else -}}
{{ .Values.postgresql.host }}
{{- end -}}
{{- end -}}

{{- define "crypto-ml.redisHost" -}}
{{- if .Values.redis.enabled -}}
{{ include "crypto-ml.fullname" . }}-redis
{{- else -}}
{{ .Values.redis.host }}
{{- end -}}
{{- end -}}

{{/* One env var from the Secret: (dict "root" $ "name" "ENV" "key" "secret-key") */}}
{{- define "crypto-ml.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.existingSecret }}
      key: {{ .key }}
{{- end -}}

{{/*
Passwords come from the Secret as env vars; the URLs are composed by Kubernetes' $(VAR)
expansion, so no password is ever written into a manifest.
*/}}
{{- define "crypto-ml.passwordEnv" -}}
{{ include "crypto-ml.secretEnv" (dict "root" . "name" "CRYPTO_ML_POSTGRES_PASSWORD" "key" .Values.secrets.keys.postgresPassword) }}
{{ include "crypto-ml.secretEnv" (dict "root" . "name" "CRYPTO_ML_REDIS_PASSWORD" "key" .Values.secrets.keys.redisPassword) }}
{{- end -}}

{{- define "crypto-ml.pgUrl" -}}
{{- $pg := .root.Values.postgresql -}}
{{ printf "%s://%s:$(CRYPTO_ML_POSTGRES_PASSWORD)@%s:%d/%s" .scheme $pg.user (include "crypto-ml.postgresHost" .root) (int $pg.port) .db }}
{{- end -}}

{{- define "crypto-ml.redisUrl" -}}
{{ printf "redis://:$(CRYPTO_ML_REDIS_PASSWORD)@%s:%d/%d" (include "crypto-ml.redisHost" .root) (int .root.Values.redis.port) (int .db) }}
{{- end -}}

{{/* The prediction engine's settings (engine workers, Flower, and Airflow tasks that submit). */}}
{{- define "crypto-ml.engineEnv" -}}
- name: CRYPTO_ML_DATABASE_URL
  value: {{ include "crypto-ml.pgUrl" (dict "root" . "scheme" "postgresql+psycopg2" "db" .Values.postgresql.cryptoMlDatabase) | quote }}
- name: CRYPTO_ML_BROKER_URL
  value: {{ include "crypto-ml.redisUrl" (dict "root" . "db" .Values.redis.engineBrokerDb) | quote }}
- name: CRYPTO_ML_RESULT_BACKEND
  value: {{ include "crypto-ml.redisUrl" (dict "root" . "db" .Values.redis.engineResultDb) | quote }}
- name: CRYPTO_ML_HOME
  value: /opt/airflow/crypto_ml
- name: CRYPTO_ML_MODEL_STORE_URL
  value: {{ .Values.modelStore.url | quote }}
{{- with .Values.modelStore.extraEnv }}
{{ toYaml . }}
{{- end }}
- name: CRYPTO_ML_ENGINE_PRELOAD
  value: {{ .Values.cryptoWorker.preload | quote }}
{{- end -}}

{{/* Trading (CRYPTO_ML_TRADING_*): only the Airflow tasks place orders. */}}
{{- define "crypto-ml.tradingEnv" -}}
{{- $t := .Values.trading -}}
- name: CRYPTO_ML_TRADING_BROKER
  value: {{ $t.broker | quote }}
{{- if $t.url }}
- name: CRYPTO_ML_TRADING_URL
  value: {{ $t.url | quote }}
{{- end }}
- name: CRYPTO_ML_TRADING_DRY_RUN
  value: {{ ternary "1" "0" $t.dryRun | quote }}
- name: CRYPTO_ML_TRADING_LIVE
  value: {{ ternary "1" "0" $t.live | quote }}
{{- if $t.tokenKey }}
{{ include "crypto-ml.secretEnv" (dict "root" . "name" "CRYPTO_ML_TRADING_TOKEN" "key" $t.tokenKey) }}
{{- end }}
{{- end -}}

{{/* Every Airflow process shares these (JWT secret, API secret key, Fernet key, execution API). */}}
{{- define "crypto-ml.airflowEnv" -}}
{{ include "crypto-ml.passwordEnv" . }}
{{ include "crypto-ml.secretEnv" (dict "root" . "name" "AIRFLOW__CORE__FERNET_KEY" "key" .Values.secrets.keys.fernetKey) }}
{{ include "crypto-ml.secretEnv" (dict "root" . "name" "AIRFLOW__API_AUTH__JWT_SECRET" "key" .Values.secrets.keys.jwtSecret) }}
{{ include "crypto-ml.secretEnv" (dict "root" . "name" "AIRFLOW__API__SECRET_KEY" "key" .Values.secrets.keys.apiSecretKey) }}
- name: AIRFLOW__CORE__EXECUTOR
  value: CeleryExecutor
- name: AIRFLOW__CORE__AUTH_MANAGER
  value: {{ .Values.airflow.authManager | quote }}
- name: AIRFLOW__CORE__LOAD_EXAMPLES
  value: "False"
- name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  value: {{ printf "http://%s-api-server:%d/execution/" (include "crypto-ml.fullname" .) (int .Values.apiServer.service.port) | quote }}
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  value: {{ include "crypto-ml.pgUrl" (dict "root" . "scheme" "postgresql+psycopg2" "db" .Values.postgresql.airflowDatabase) | quote }}
- name: AIRFLOW__CELERY__BROKER_URL
  value: {{ include "crypto-ml.redisUrl" (dict "root" . "db" .Values.redis.airflowBrokerDb) | quote }}
- name: AIRFLOW__CELERY__RESULT_BACKEND
  value: {{ include "crypto-ml.pgUrl" (dict "root" . "scheme" "db+postgresql" "db" .Values.postgresql.airflowDatabase) | quote }}
- name: AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK
  value: "True"
{{ include "crypto-ml.engineEnv" . }}
{{ include "crypto-ml.tradingEnv" . }}
{{- with .Values.airflow.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "crypto-ml.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 50000
runAsGroup: 0
fsGroup: 0
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "crypto-ml.containerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "crypto-ml.volumes" -}}
- name: logs
{{- if .Values.logs.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.logs.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
# Per-pod scratch only (fetched-model cache, plots): models live in the shared model store.
- name: crypto-ml-home
  emptyDir: {}
{{- end -}}

{{- define "crypto-ml.volumeMounts" -}}
- name: logs
  mountPath: /opt/airflow/logs
- name: crypto-ml-home
  mountPath: /opt/airflow/crypto_ml
{{- end -}}

{{/* Waits until `airflow db migrate` (the migrations Job) has run. */}}
{{- define "crypto-ml.waitForMigrations" -}}
- name: wait-for-airflow-migrations
  image: {{ include "crypto-ml.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["airflow", "db", "check-migrations", "--migration-wait-timeout", "600"]
  securityContext:
    {{- include "crypto-ml.containerSecurityContext" . | nindent 4 }}
  env:
    {{- include "crypto-ml.airflowEnv" . | nindent 4 }}
{{- end -}}

{{/* nodeSelector and tolerations of a component's pod, from its values (e.g. .Values.cryptoWorker). */}}
{{- define "crypto-ml.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
