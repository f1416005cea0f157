{{/*
The release name is the cell's name: {region}-{environment}-{n} (e.g. eu-central-prod-1), with region and
environment as in values. It names every object, and the log origin is {originHost}/{release name}.
*/}}
{{- define "atp.validate" -}}
{{- if not (regexMatch "^[a-z][a-z0-9-]{1,31}$" .Values.region) -}}
{{- fail (printf "region %q must match [a-z][a-z0-9-]{1,31} (Atp:Region)" .Values.region) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z][a-z0-9]{0,15}$" .Values.environment) -}}
{{- fail (printf "environment %q must be lower-case letters and digits, at most 16, no hyphen (dev, staging, prod, ...)" .Values.environment) -}}
{{- end -}}
{{- if not (regexMatch (printf "^%s-%s-[1-9][0-9]*$" .Values.region .Values.environment) .Release.Name) -}}
{{- fail (printf "release name %q must be {region}-{environment}-{n}, here %s-%s-<n> (n = 1, 2, ...)" .Release.Name .Values.region .Values.environment) -}}
{{- end -}}
{{- if not (has .Values.storage.provider (list "sqlite" "postgres")) -}}
{{- fail (printf "storage.provider must be sqlite or postgres, not %q" .Values.storage.provider) -}}
{{- end -}}
{{- if not (has .Values.nodeRole (list "all" "ingest")) -}}
{{- fail (printf "nodeRole %q does not exist (yet): use all or ingest; query, sealer, gateway and relay are planned" .Values.nodeRole) -}}
{{- end -}}
{{- if eq .Values.storage.provider "sqlite" -}}
{{- if ne (int .Values.replicas) 1 -}}
{{- fail "the embedded store (storage.provider sqlite) serves one node: set replicas to 1, or use postgres" -}}
{{- end -}}
{{- if ne .Values.nodeRole "all" -}}
{{- fail "nodeRole ingest needs storage.provider postgres (another node must project)" -}}
{{- end -}}
{{- else -}}
{{- if not .Values.storage.postgres.existingSecret -}}
{{- fail "storage.postgres.existingSecret is required for provider postgres (a Secret with the connection strings)" -}}
{{- end -}}
{{- if not .Values.storage.exports.existingClaim -}}
{{- fail "storage.exports.existingClaim is required for provider postgres (a ReadWriteMany claim for Atp:Export:Directory)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.signingKey.existingSecret) -}}
{{- fail "signingKey.existingSecret is required with more than one replica: every node of a cell signs with the same key" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "atp.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "atp.selectorLabels" -}}
app.kubernetes.io/name: atp
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "atp.labels" -}}
{{ include "atp.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
atp.dev/region: {{ .Values.region }}
atp.dev/environment: {{ .Values.environment }}
atp.dev/role: {{ .Values.nodeRole }}
{{- end -}}

{{- define "atp.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
