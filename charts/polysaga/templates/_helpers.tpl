{{/* The chart name, truncated to 63 characters (the DNS label limit). */}}
{{- define "polysaga.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release-qualified name; a release whose name already contains the chart name is not
repeated ("polysaga" rather than "polysaga-polysaga").
*/}}
{{- define "polysaga.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "polysaga.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "polysaga.labels" -}}
helm.sh/chart: {{ include "polysaga.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "polysaga.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of one component (a service, nats, jaeger): dict "root" $ "component" name. */}}
{{- define "polysaga.selectorLabels" -}}
app.kubernetes.io/name: {{ .component | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .root.Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* All labels of one component's objects: dict "root" $ "component" name. */}}
{{- define "polysaga.componentLabels" -}}
{{ include "polysaga.labels" .root }}
{{ include "polysaga.selectorLabels" . }}
app.kubernetes.io/component: {{ .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of one component's objects: dict "root" $ "component" name. The prefix is cut to 40
characters so a StatefulSet's pods and revision labels (name + 11) still fit 63. */}}
{{- define "polysaga.componentName" -}}
{{- printf "%s-%s" (include "polysaga.fullname" .root | trunc 40 | trimSuffix "-") .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The store each service's code uses (tools/polysaga_tools/stack.py SERVICE_STORES): fixed by
the code, so not a value. "" means no store.
*/}}
{{- define "polysaga.engines" -}}
order: postgresql
inventory: postgresql
payment: postgresql
orchestrator: postgresql
sales: postgresql
user: postgresql
notification: postgresql
catalog: {{ .Values.databases.mongoEngine }}
order-view: {{ .Values.databases.mongoEngine }}
gateway: ""
{{- end }}

{{/* The Python module a service runs as (python -m <module>). */}}
{{- define "polysaga.module" -}}
{{- . | replace "-" "_" }}
{{- end }}

{{/* A service's image: dict "root" $ "service" values-of-the-service. */}}
{{- define "polysaga.image" -}}
{{- $global := .root.Values.image }}
{{- $image := .service.image }}
{{- $tag := $image.tag | default $global.tag | default .root.Chart.AppVersion }}
{{- if $global.registry }}
{{- printf "%s/%s:%s" $global.registry $image.repository $tag }}
{{- else }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}
{{- end }}

{{- define "polysaga.natsName" -}}
{{- include "polysaga.componentName" (dict "root" . "component" "nats") }}
{{- end }}

{{- define "polysaga.natsUrl" -}}
{{- printf "nats://%s:%d" (include "polysaga.natsName" .) (int .Values.nats.port) }}
{{- end }}

{{/* The Secret holding each service's NATS password and the server's authorization block. */}}
{{- define "polysaga.natsUsersSecret" -}}
{{- printf "%s-users" (include "polysaga.natsName" .) }}
{{- end }}

{{/* The NATS permissions of every service that uses NATS, from files/nats-permissions.json. */}}
{{- define "polysaga.natsPermissions" -}}
{{- .Files.Get "files/nats-permissions.json" }}
{{- end }}

{{- define "polysaga.jaegerName" -}}
{{- include "polysaga.componentName" (dict "root" . "component" "jaeger") }}
{{- end }}

{{/* Where services send OTLP: the configured endpoint, else the bundled Jaeger's, else none. */}}
{{- define "polysaga.otlpEndpoint" -}}
{{- if .Values.tracing.otlpEndpoint }}
{{- .Values.tracing.otlpEndpoint }}
{{- else if .Values.jaeger.enabled }}
{{- printf "http://%s:4318" (include "polysaga.jaegerName" .) }}
{{- end }}
{{- end }}

{{/* The name of a service's ServiceDatabase (and so of the operator's objects for it). */}}
{{- define "polysaga.databaseName" -}}
{{- /* At most 40 characters (24 + "-" + the longest service, "notification", + "-db"), since
the operator derives longer names from it. */ -}}
{{- printf "%s-%s-db" (include "polysaga.fullname" .root | trunc 24 | trimSuffix "-") .component }}
{{- end }}

{{/* The operator's credentials Secret of a ServiceDatabase: <name>-credentials. */}}
{{- define "polysaga.databaseSecret" -}}
{{- printf "%s-credentials" (include "polysaga.databaseName" .) }}
{{- end }}

{{/* Container security context every container gets (restricted Pod Security Standard). */}}
{{- define "polysaga.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The services the gateway calls (a JSON list): their HTTP port admits it. */}}
{{- define "polysaga.gatewayUpstreams" -}}
{{- toJson (list "order" "user" "catalog" "order-view") }}
{{- end }}

{{/* The gateway's upstreams (POLYSAGA_SERVICE_URLS): the services it composes, by in-cluster URL. */}}
{{- define "polysaga.gatewayServiceUrls" -}}
{{- $urls := dict }}
{{- range $service := include "polysaga.gatewayUpstreams" . | fromJsonArray }}
{{- $_ := set $urls $service (printf "http://%s:%d" (include "polysaga.componentName" (dict "root" $ "component" $service)) (int $.Values.httpPort)) }}
{{- end }}
{{- toJson $urls }}
{{- end }}

{{/* The NATS server's environment variable holding a service's password: PASSWORD_ORDER_VIEW. */}}
{{/* Every NATS user: one per service, plus the unrestricted admin user when one is named. */}}
{{- define "polysaga.natsUsers" -}}
{{- $users := keys (include "polysaga.natsPermissions" . | fromJson) | sortAlpha }}
{{- with .Values.nats.adminUser }}{{ $users = append $users . }}{{ end }}
{{- $users | toJson }}
{{- end }}

{{- define "polysaga.natsPasswordVariable" -}}
{{- printf "PASSWORD_%s" (. | upper | replace "-" "_") }}
{{- end }}

{{/* The Secret with the operator token (POLYSAGA_OPERATOR_TOKEN): generated, or the user's own. */}}
{{- define "polysaga.operatorTokenSecret" -}}
{{- if .Values.auth.operatorToken.create }}
{{- printf "%s-operator-token" (include "polysaga.fullname" . | trunc 48 | trimSuffix "-") }}
{{- else }}
{{- required "auth.operatorToken.existingSecret is required when auth.operatorToken.create is false" .Values.auth.operatorToken.existingSecret }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding auth.jwt.jwks, mounted into the gateway. */}}
{{- define "polysaga.jwksConfigMap" -}}
{{- printf "%s-jwks" (include "polysaga.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}
