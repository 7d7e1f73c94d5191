{{/*
Chart name, truncated to 63 characters (the limit of a DNS label).
*/}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name, the prefix of every object. Truncated to 46 characters so that the
longest Service name ("<fullname>-operator-metrics", 17 more) still fits in a 63-character
DNS label.
*/}}
{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "ctx" $ "component" "operator").
*/}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
All labels of one component's objects. Call with (dict "ctx" $ "component" "operator").
*/}}
{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Image reference of one Switchboard image. Call with
(dict "ctx" $ "repository" "..." "tag" "..." "digest" "sha256:...").
The tag falls back to image.tag, then to the chart's appVersion; with a digest the reference is
`<registry>/<repository>:<tag>@<digest>` (the digest the release workflow printed).
*/}}
{{- define "switchboard.image" -}}
{{- $tag := .tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion -}}
{{- $ref := printf "%s/%s:%s" (trimSuffix "/" .ctx.Values.image.registry) .repository (toString $tag) -}}
{{- if .digest -}}
{{- /* Pinned: the runtime pulls by digest; the tag stays for people reading the manifest. */ -}}
{{- $ref = printf "%s@%s" $ref .digest -}}
{{- end -}}
{{- $ref -}}
{{- end }}

{{/*
Name of the operator's leader-election Lease (one per release).
*/}}
{{- define "switchboard.leaseName" -}}
{{- printf "%s-operator" (include "switchboard.fullname" .) }}
{{- end }}

{{/*
ServiceAccount names.
*/}}
{{- define "switchboard.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "switchboard.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchboard.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (printf "%s-gateway" (include "switchboard.fullname" .)) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The public URL, required, without a trailing slash.
*/}}
{{- define "switchboard.publicUrl" -}}
{{- required "publicUrl is required: the https base URL carriers reach the gateway at, e.g. https://voice.example.com" .Values.publicUrl | trimSuffix "/" -}}
{{- end }}

{{/*
Host of the Ingress: gateway.ingress.host, else the host part of publicUrl.
*/}}
{{- define "switchboard.ingressHost" -}}
{{- if .Values.gateway.ingress.host }}
{{- .Values.gateway.ingress.host }}
{{- else }}
{{- (urlParse (include "switchboard.publicUrl" .)).hostname }}
{{- end }}
{{- end }}

{{/*
Restricted pod security context (Pod Security Standard `restricted`). The images run as
the distroless `nonroot` user, uid/gid 65532.
*/}}
{{- define "switchboard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Restricted container security context.
*/}}
{{- define "switchboard.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
Preferred spreading of a component's replicas over nodes, used when no affinity is given.
Call with (dict "ctx" $ "component" "operator").
*/}}
{{- define "switchboard.defaultAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "switchboard.selectorLabels" . | nindent 12 }}
{{- end }}

{{/*
Environment variable from a key of an existing Secret.
Call with (dict "env" "NAME" "secret" "secret-name" "key" "key" "optional" false).
*/}}
{{- define "switchboard.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | quote }}
      key: {{ .key | quote }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/*
Platform carrier credentials, shared by the operator and the gateway. Every key is
optional so that a platform may configure only one carrier.
*/}}
{{- define "switchboard.carrierEnv" -}}
{{- $secret := .Values.secrets.carriers.name }}
{{- if $secret }}
{{- range list "TWILIO_ACCOUNT_SID" "TWILIO_AUTH_TOKEN" "TELNYX_API_KEY" "TELNYX_CONNECTION_ID" "TELNYX_PUBLIC_KEY" }}
{{ include "switchboard.secretEnv" (dict "env" . "secret" $secret "key" . "optional" true) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The carrier environment indented for a container's env list (nothing when unset).
*/}}
{{- define "switchboard.carrierEnvIndented" -}}
{{- with include "switchboard.carrierEnv" . | trim }}
{{ . | indent 12 }}
{{- end }}
{{- end }}

{{/*
Egress rules every Switchboard pod needs: DNS, the Kubernetes API server and https to the
outside world (carriers, Stripe, customers' webhooks). The API server's address lies outside
the pod network and differs per cluster, so these rules name ports, not peers.
*/}}
{{- define "switchboard.commonEgress" -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
- ports:
    - protocol: TCP
      port: 443
    {{- range .Values.networkPolicy.egress.apiServerPorts }}
    {{- if ne (int .) 443 }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
    {{- end }}
{{- with .Values.networkPolicy.egress.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
ClusterRoles the operator binds in every tenant namespace (SWITCHBOARD_TENANT_ROLE_BINDINGS):
its own Secret reader and the gateway's Secret writer.
*/}}
{{- define "switchboard.tenantRoleBindings" -}}
{{- $fullname := include "switchboard.fullname" . -}}
{{- $bindings := list (dict "clusterRole" (printf "%s-operator-tenant" $fullname) "serviceAccountNamespace" .Release.Namespace "serviceAccount" (include "switchboard.operator.serviceAccountName" .)) -}}
{{- $bindings = append $bindings (dict "clusterRole" (printf "%s-gateway-tenant" $fullname) "serviceAccountNamespace" .Release.Namespace "serviceAccount" (include "switchboard.gateway.serviceAccountName" .)) -}}
{{- toJson $bindings -}}
{{- end }}
