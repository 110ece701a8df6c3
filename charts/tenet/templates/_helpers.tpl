{{/* Labels every object gets: the base's app.kubernetes.io/part-of plus Helm's own. */}}
{{- define "tenet.labels" -}}
app.kubernetes.io/part-of: tenet
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The operator's selector: the same as the kustomize base, so either install can replace the other. */}}
{{- define "tenet.selectorLabels" -}}
app.kubernetes.io/name: tenet-operator
{{- end }}

{{- define "tenet.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
