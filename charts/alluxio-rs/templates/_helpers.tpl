{{/* The release's full name, at most 63 characters. */}}
{{- define "alluxio-rs.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "alluxio-rs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "alluxio-rs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "alluxio-rs.selectorLabels" -}}
app.kubernetes.io/name: alluxio-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "alluxio-rs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "alluxio-rs.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Role or ClusterRole: a Role when one namespace is watched. */}}
{{- define "alluxio-rs.roleKind" -}}
{{- if .Values.watchNamespace -}}Role{{- else -}}ClusterRole{{- end -}}
{{- end -}}
