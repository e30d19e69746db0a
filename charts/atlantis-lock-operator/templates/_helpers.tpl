{{/* Chart name, overridable with nameOverride. */}}
{{- define "alo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: "<release>-<chart>", or just the release name when it already contains the chart name. */}}
{{- define "alo.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "alo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "alo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: atlantis-lock-operator
{{- end }}

{{/* Labels that select the manager pods. */}}
{{- define "alo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/* The manager's ServiceAccount name. */}}
{{- define "alo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "alo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The manager image reference. */}}
{{- define "alo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Directory where the configuration file is mounted. */}}
{{- define "alo.configDir" -}}/etc/atlantis-lock-operator/config{{- end }}

{{/* Directory under which webhook secretRefs are mounted, one sub-directory per webhook. */}}
{{- define "alo.webhookSecretDir" -}}/etc/atlantis-lock-operator/webhook-secrets{{- end }}

{{/*
The enhanced_locking configuration file: the config keys that are set (null ones keep
the operator's defaults), with each webhook's secretRef turned into the secret_file
where the Deployment mounts it.
*/}}
{{- define "alo.configFile" -}}
{{- $el := dict }}
{{- range $key, $value := .Values.config }}
{{- if and (ne $key "webhooks") (not (kindIs "invalid" $value)) }}
{{- $_ := set $el $key $value }}
{{- end }}
{{- end }}
{{- $hooks := list }}
{{- range $i, $hook := .Values.config.webhooks }}
{{- $out := dict }}
{{- range $key, $value := $hook }}
{{- if and (ne $key "secretRef") (not (kindIs "invalid" $value)) }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- end }}
{{- with $hook.secretRef }}
{{- if or $hook.secret_file $hook.secret_env }}
{{- fail (printf "config.webhooks[%d]: give one of secretRef, secret_file and secret_env" $i) }}
{{- end }}
{{- $_ := set $out "secret_file" (printf "%s/%d/%s" (include "alo.webhookSecretDir" $) $i .key) }}
{{- end }}
{{- $hooks = append $hooks $out }}
{{- end }}
{{- if $hooks }}
{{- $_ := set $el "webhooks" $hooks }}
{{- end }}
{{- toYaml (dict "enhanced_locking" $el) }}
{{- end }}

{{/* True ("true") when config.audit_log is a file path, whose directory gets a volume. */}}
{{- define "alo.auditLogIsFile" -}}
{{- $log := .Values.config.audit_log }}
{{- if and $log (ne $log "-") }}true{{- end }}
{{- end }}

{{/* The manager's RBAC rules: config/rbac/role.yaml, generated from the +kubebuilder:rbac markers and copied into files/ by `make manifests`. */}}
{{- define "alo.managerRules" -}}
{{- $role := .Files.Get "files/manager-role.yaml" | fromYaml }}
{{- if not $role.rules }}
{{- fail "files/manager-role.yaml has no rules; run make manifests" }}
{{- end }}
{{- toYaml $role.rules }}
{{- end }}

{{/* Checks of value combinations the schema cannot express. */}}
{{- define "alo.validate" -}}
{{- /* Major and minor as numbers ("35+" on some providers); development builds of
kube-apiserver, such as bin/'s, report no version (v0.0.0) and are let through. */}}
{{- $major := int (default "0" (regexFind "^[0-9]+" (toString .Capabilities.KubeVersion.Major))) }}
{{- $minor := int (default "0" (regexFind "^[0-9]+" (toString .Capabilities.KubeVersion.Minor))) }}
{{- if and (eq $major 1) (lt $minor 35) }}
{{- fail (printf "Kubernetes %s is too old: the operator needs 1.35 or later, whose resourceVersions are comparable (fencing tokens)" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled: without it every replica would decide" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (eq (toString .Values.config.backend) "memory") }}
{{- fail "config.backend \"memory\" keeps locks in one process: set replicaCount to 1" }}
{{- end }}
{{- if and (include "alo.auditLogIsFile" .) (not (isAbs (toString .Values.config.audit_log))) }}
{{- fail (printf "config.audit_log %q: give an absolute path, \"-\" (standard output) or \"\" (none)" .Values.config.audit_log) }}
{{- end }}
{{- if and .Values.watchNamespaces .Values.atlantis.rbac.create }}
{{- range (include "alo.atlantisNamespaces" . | fromJsonArray) }}
{{- if not (has . $.Values.watchNamespaces) }}
{{- fail (printf "atlantis lock namespace %q is not in watchNamespaces: the operator would never serve its LockRequests" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Namespaces where Atlantis creates LockRequests, as a JSON array. */}}
{{- define "alo.atlantisNamespaces" -}}
{{- if .Values.atlantis.lockNamespaces }}
{{- toJson (uniq .Values.atlantis.lockNamespaces) }}
{{- else }}
{{- toJson (list (required "atlantis.serviceAccount.namespace is required when atlantis.rbac.create is true" .Values.atlantis.serviceAccount.namespace)) }}
{{- end }}
{{- end }}

{{/* Namespace of the Redis gateway's Secrets: redisGateway.storeNamespace, or the first lock namespace. */}}
{{- define "alo.redisGatewayStoreNamespace" -}}
{{- default (first (include "alo.atlantisNamespaces" . | fromJsonArray)) .Values.atlantis.redisGateway.storeNamespace }}
{{- end }}

{{/*
The Redis gateway sidecar and the Atlantis settings that point Atlantis at it, as
values of the Atlantis Helm chart (runatlantis/helm-charts): extraContainers and
environment. Atlantis needs no Redis and no volume for its locks then.
*/}}
{{- define "alo.redisGatewaySidecar" -}}
{{- $gw := .Values.atlantis.redisGateway -}}
environment:
  ATLANTIS_LOCKING_DB_TYPE: redis
  ATLANTIS_REDIS_HOST: 127.0.0.1
  ATLANTIS_REDIS_PORT: {{ $gw.port | quote }}
extraContainers:
- name: redis-gateway
  image: {{ include "alo.image" . }}
  command: ["/redis-gateway"]
  args:
  - --namespace={{ first (include "alo.atlantisNamespaces" . | fromJsonArray) }}
  - --store-namespace={{ include "alo.redisGatewayStoreNamespace" . }}
  - --listen=127.0.0.1:{{ $gw.port }}
  - --http-address=:{{ $gw.httpPort }}
  ports:
  - name: gw-metrics
    containerPort: {{ $gw.httpPort }}
  readinessProbe:
    httpGet: {path: /readyz, port: {{ $gw.httpPort }}}
  livenessProbe:
    httpGet: {path: /healthz, port: {{ $gw.httpPort }}}
  resources:
    {{- toYaml $gw.resources | nindent 4 }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    capabilities: {drop: [ALL]}
{{- end }}
