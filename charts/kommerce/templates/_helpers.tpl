{{/* The one tag of every image of the release. */}}
{{- define "kommerce.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{/* An image of the release: kommerce.image (dict "root" $ "name" "user"). */}}
{{- define "kommerce.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .name (include "kommerce.tag" .root) -}}
{{- end -}}

{{- define "kommerce.labels" -}}
app.kubernetes.io/part-of: kommerce
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The restricted pod security context every pod of the chart runs with. */}}
{{- define "kommerce.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 65532 }}
runAsGroup: {{ .uid | default 65532 }}
fsGroup: {{ .uid | default 65532 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kommerce.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Where the services reach Redis and Kafka. */}}
{{- define "kommerce.redisUrl" -}}
{{- if .Values.infrastructure.enabled -}}
{{- printf "redis://%s-redis.%s.svc:6379" .Release.Name .Release.Namespace -}}
{{- else -}}
{{- required "external.redisUrl is required when infrastructure.enabled is false" .Values.external.redisUrl -}}
{{- end -}}
{{- end -}}

{{- define "kommerce.kafka" -}}
{{- if .Values.infrastructure.enabled -}}
{{- printf "%s-kafka.%s.svc:9092" .Release.Name .Release.Namespace -}}
{{- else -}}
{{- required "external.kafkaBootstrapServers is required when infrastructure.enabled is false" .Values.external.kafkaBootstrapServers -}}
{{- end -}}
{{- end -}}

{{- define "kommerce.databaseUrlsSecret" -}}
{{- if .Values.infrastructure.enabled -}}
{{- printf "%s-database-urls" .Release.Name -}}
{{- else -}}
{{- required "external.databaseUrlsSecret is required when infrastructure.enabled is false" .Values.external.databaseUrlsSecret -}}
{{- end -}}
{{- end -}}

{{/*
A generated secret value kept across upgrades: the value already in the cluster's Secret
(lookup), or a fresh one. kommerce.keep (dict "root" $ "secret" name "key" key "new" value).
*/}}
{{- define "kommerce.keep" -}}
{{- $old := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $old $old.data (hasKey $old.data .key) -}}
{{- index $old.data .key | b64dec -}}
{{- else -}}
{{- .new -}}
{{- end -}}
{{- end -}}
