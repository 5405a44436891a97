{{/* The chart name, truncated to the 63 characters a label allows. */}}
{{- define "polysaga-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's resources. */}}
{{- define "polysaga-operator.fullname" -}}
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

{{- define "polysaga-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods; the ServiceDatabases' NetworkPolicies admit them. */}}
{{- define "polysaga-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "polysaga-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "polysaga-operator.labels" -}}
helm.sh/chart: {{ include "polysaga-operator.chart" . }}
{{ include "polysaga-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: polysaga
app.kubernetes.io/component: operator
{{- end }}

{{- define "polysaga-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "polysaga-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The permissions on ServiceDatabases and their children, granted cluster-wide or per
watched namespace. Each verb is one the operator uses: kopf lists, watches and patches the
ServiceDatabases (finalizer, progress annotations, status) and posts events; the handlers
server-side apply (create, patch), read and delete the children and grow volume claims. */}}
{{- define "polysaga-operator.namespacedRules" -}}
- apiGroups: [polysaga.io]
  resources: [servicedatabases]
  verbs: [list, watch, patch]
- apiGroups: [polysaga.io]
  resources: [servicedatabases/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets, services]
  verbs: [get, create, patch, delete]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, patch]
{{- end }}
