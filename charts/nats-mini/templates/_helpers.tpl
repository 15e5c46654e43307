{{/*
Helpers of the nats-mini chart.

Everything the broker objects need is computed here the way the nats-mini operator computes it
(operator/src/render/*.rs), because operator/tests/chart_equivalence.rs requires the chart's
ConfigMap, Services, StatefulSet, PodDisruptionBudget and ServiceMonitor to equal the
operator's for the same input. Values arrive from JSON, so every number is a float64: numbers
are written with int64 / printf "%d", never printed as they are (1000000 would become 1e+06).
No .Capabilities and no lookup: the output depends on the values and the release only.
*/}}

{{/* Name of every broker object: fullnameOverride or the release name. */}}
{{- define "nats-mini.fullname" -}}
{{- .Values.fullnameOverride | default .Release.Name -}}
{{- end -}}

{{/* Labels selecting the brokers' pods (StatefulSet, PDB and Service selectors). Never change
them for an existing release: a StatefulSet's selector is immutable. */}}
{{- define "nats-mini.selectorLabels" -}}
app.kubernetes.io/component: broker
app.kubernetes.io/instance: {{ include "nats-mini.fullname" . }}
app.kubernetes.io/name: nats-mini
{{- end -}}

{{/* Labels of the pod template: the operator's common labels (Helm manages them here). */}}
{{- define "nats-mini.commonLabels" -}}
{{ include "nats-mini.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels of every object's metadata: the common labels plus Helm's own. */}}
{{- define "nats-mini.labels" -}}
{{ include "nats-mini.commonLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* metadata: name, namespace and labels. Argument: (list $ NAME). */}}
{{- define "nats-mini.metadata" -}}
{{- $ := index . 0 -}}
name: {{ index . 1 }}
namespace: {{ $.Release.Namespace }}
labels:
  {{- include "nats-mini.labels" $ | nindent 2 }}
{{- end -}}

{{/* The broker image, repository:tag. */}}
{{- define "nats-mini.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The configured cluster name. */}}
{{- define "nats-mini.clusterName" -}}
{{- .Values.cluster.name | default (include "nats-mini.fullname" .) -}}
{{- end -}}

{{/*
A size in bytes, by nats-server's rules: an integer, or digits with an optional suffix where
k m g t p e alone are powers of 1000 and with b, i or ib powers of 1024 (any case).
Argument: (list FIELD VALUE). Prints the byte count; fails naming FIELD.
*/}}
{{- define "nats-mini.size" -}}
{{- $field := index . 0 -}}
{{- $v := index . 1 -}}
{{- if or (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v) -}}
{{- $f := float64 $v -}}
{{- if or (lt $f 0.0) (ne $f (floor $f)) -}}
{{- fail (printf "%s: %v is not a size: use a whole number of bytes or a string such as \"2mb\"" $field $v) -}}
{{- end -}}
{{- printf "%d" (int64 $v) -}}
{{- else if and (kindIs "string" $v) (regexMatch "^[0-9]+([KkMmGgTtPpEe]([Ii]?[Bb]|[Ii])?)?$" $v) -}}
{{- $digits := regexFind "^[0-9]+" $v -}}
{{- $suffix := lower (trimPrefix $digits $v) -}}
{{- $digits = regexReplaceAll "^0+" $digits "" | default "0" -}}
{{- if gt (len $digits) 18 -}}
{{- fail (printf "%s: %q is too large for a size" $field $v) -}}
{{- end -}}
{{- $n := int64 $digits -}}
{{- $mult := int64 1 -}}
{{- if $suffix -}}
{{- $exp := index (dict "k" 1 "m" 2 "g" 3 "t" 4 "p" 5 "e" 6) (substr 0 1 $suffix) -}}
{{- $base := ternary 1000 1024 (eq (len $suffix) 1) -}}
{{- range until $exp -}}
{{- $mult = mul $mult $base -}}
{{- end -}}
{{- end -}}
{{- if gt $n (div 9223372036854775807 $mult) -}}
{{- fail (printf "%s: %q is too large for a size" $field $v) -}}
{{- end -}}
{{- mul $n $mult -}}
{{- else -}}
{{- fail (printf "%s: %q is not a size (examples: 1048576, \"64kb\", \"2MiB\", \"1m\")" $field (toString $v)) -}}
{{- end -}}
{{- end -}}

{{/*
A Go duration ("500ms", "1m30s", "1.5s", "50us" or "50µs", a bare "0") in nanoseconds, parsed
like the operator does (fractions truncated to the nanosecond). Argument: (list FIELD VALUE).
Fails naming FIELD.
*/}}
{{- define "nats-mini.durationNanos" -}}
{{- $field := index . 0 -}}
{{- $v := index . 1 -}}
{{- if not (and (kindIs "string" $v) (regexMatch "^(0|([0-9]+(\\.[0-9]+)?(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$" $v)) -}}
{{- fail (printf "%s: %q is not a duration (examples: \"500ms\", \"2s\", \"1m30s\")" $field (toString $v)) -}}
{{- end -}}
{{- $units := dict "ns" 1 "us" 1000 "\u00b5s" 1000 "\u03bcs" 1000 "ms" 1000000 "s" 1000000000 "m" 60000000000 "h" 3600000000000 -}}
{{- $max := int64 9223372036854775807 -}}
{{- $total := int64 0 -}}
{{- range $term := regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)" $v -1 -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $term -}}
{{- $unit := int64 (index $units (trimPrefix $number $term)) -}}
{{- $int := regexReplaceAll "^0+" (regexFind "^[0-9]+" $number) "" | default "0" -}}
{{- $frac := trimPrefix "." (trimPrefix (regexFind "^[0-9]+" $number) $number) -}}
{{- if or (gt (len $int) 18) (gt (int64 $int) (div $max $unit)) -}}
{{- fail (printf "%s: %q is too long" $field $v) -}}
{{- end -}}
{{- $part := mul (int64 $int) $unit -}}
{{- $scale := $unit -}}
{{- range $digit := splitList "" (trunc 18 $frac) -}}
{{- if $digit -}}
{{- $scale = div $scale 10 -}}
{{- $part = add $part (mul (int64 $digit) $scale) -}}
{{- end -}}
{{- end -}}
{{- if gt $part (sub $max $total) -}}
{{- fail (printf "%s: %q is too long" $field $v) -}}
{{- end -}}
{{- $total = add $total $part -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: lame duck (rounded up to whole seconds) + 10s lame-duck
grace period + 20s margin, so the kubelet's SIGKILL never cuts lame duck short. */}}
{{- define "nats-mini.terminationGracePeriodSeconds" -}}
{{- $ns := int64 (include "nats-mini.durationNanos" (list "lameDuckDuration" .Values.lameDuckDuration)) -}}
{{- $secs := div $ns 1000000000 -}}
{{- if gt (mod $ns 1000000000) 0 -}}
{{- $secs = add $secs 1 -}}
{{- end -}}
{{- add $secs 10 20 -}}
{{- end -}}

{{/* Whether auth has a token / users configured. */}}
{{- define "nats-mini.authToken" -}}
{{- if and .Values.auth .Values.auth.token }}true{{ end -}}
{{- end -}}
{{- define "nats-mini.authUsers" -}}
{{- if and .Values.auth .Values.auth.users }}true{{ end -}}
{{- end -}}

{{/*
Every check the schema cannot express, with the operator's rules (NatsMiniSpec::validate,
Names::new). Prints nothing; fails with a message naming the value.
*/}}
{{- define "nats-mini.validate" -}}
{{- $name := include "nats-mini.fullname" . -}}
{{- $source := ternary "fullnameOverride" "the release name" (not (empty .Values.fullnameOverride)) -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "%s %q must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter) because it names Services" $source $name) -}}
{{- end -}}
{{- $last := sub (max (int64 .Values.replicas) 1) 1 -}}
{{- $derived := list (list "headless Service" (len (printf "%s-headless" $name))) (list "ConfigMap" (len (printf "%s-config" $name))) (list "pod" (len (printf "%s-%d" $name $last))) (list "StatefulSet revision label" (add (len $name) 11)) -}}
{{- range $derived -}}
{{- if gt (index . 1) 63 -}}
{{- fail (printf "%s %q: the %s name would be %d characters (limit 63); use at most %d characters" $source $name (index . 0) (index . 1) (sub 63 (sub (index . 1) (len $name)))) -}}
{{- end -}}
{{- end -}}
{{- $host := printf "%s-%d.%s-headless.%s.svc.%s" $name $last $name .Release.Namespace .Values.clusterDomain -}}
{{- if gt (len $host) 253 -}}
{{- fail (printf "clusterDomain: route host %s is %d characters (limit 253)" $host (len $host)) -}}
{{- end -}}
{{- $cluster := int64 .Values.cluster.port -}}
{{- $monitor := int64 .Values.monitoring.port -}}
{{- if or (eq $cluster 4222) (eq $monitor 4222) (eq $cluster $monitor) -}}
{{- fail (printf "cluster.port: client (4222), cluster (%d) and monitoring (%d) ports must differ" $cluster $monitor) -}}
{{- end -}}
{{- $l := .Values.nats.limits -}}
{{- $payload := "" -}}
{{- if not (kindIs "invalid" $l.maxPayload) -}}
{{- $payload = include "nats-mini.size" (list "nats.limits.maxPayload" $l.maxPayload) -}}
{{- if eq (int64 $payload) 0 }}{{ fail "nats.limits.maxPayload: must be above 0" }}{{ end -}}
{{- end -}}
{{- $pending := "" -}}
{{- if not (kindIs "invalid" $l.maxPending) -}}
{{- $pending = include "nats-mini.size" (list "nats.limits.maxPending" $l.maxPending) -}}
{{- if eq (int64 $pending) 0 }}{{ fail "nats.limits.maxPending: must be above 0" }}{{ end -}}
{{- end -}}
{{- if not (kindIs "invalid" $l.maxControlLine) -}}
{{- $control := include "nats-mini.size" (list "nats.limits.maxControlLine" $l.maxControlLine) -}}
{{- if lt (int64 $control) 256 }}{{ fail (printf "nats.limits.maxControlLine: %s is below 256 bytes" $control) }}{{ end -}}
{{- end -}}
{{- $pendingOrDefault := ternary (int64 67108864) (int64 $pending) (eq $pending "") -}}
{{- if and $payload (gt (int64 $payload) $pendingOrDefault) -}}
{{- fail (printf "nats.limits.maxPayload: %s bytes exceeds maxPending (%d bytes)" $payload $pendingOrDefault) -}}
{{- end -}}
{{- /* (key, whether 0 is allowed): a zero busyPoll turns busy polling off. */ -}}
{{- range $pair := list (list "writeDeadline" false) (list "pingInterval" false) (list "busyPoll" true) -}}
{{- $key := index $pair 0 -}}
{{- $d := index $l $key -}}
{{- if not (kindIs "invalid" $d) -}}
{{- if and (eq (include "nats-mini.durationNanos" (list (printf "nats.limits.%s" $key) $d)) "0") (not (index $pair 1)) -}}
{{- fail (printf "nats.limits.%s: must be above 0" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (include "nats-mini.authToken" .) (include "nats-mini.authUsers" .) -}}
{{- fail "auth: set either auth.token or auth.users, not both" -}}
{{- end -}}
{{- if include "nats-mini.authUsers" . -}}
{{- $seen := dict -}}
{{- range $i, $u := .Values.auth.users.users -}}
{{- if hasKey $seen $u.username -}}
{{- fail (printf "auth.users.users[%d].username: %q appears twice" $i $u.username) -}}
{{- end -}}
{{- $_ := set $seen $u.username true -}}
{{- if and (not $u.passwordKey) (not (regexMatch "^[-._a-zA-Z0-9]+$" $u.username)) -}}
{{- fail (printf "auth.users.users[%d].passwordKey: unset, and the user name %q is not a Secret key: set passwordKey" $i $u.username) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (not (kindIs "invalid" .Values.tuning.fileMax)) (ne .Values.tuning.mode "initContainer") -}}
{{- fail "tuning.fileMax: is only applied in initContainer mode (fs.file-max is node-wide and cannot be a pod sysctl)" -}}
{{- end -}}
{{- $ldm := int64 (include "nats-mini.durationNanos" (list "lameDuckDuration" .Values.lameDuckDuration)) -}}
{{- if lt $ldm 30000000000 -}}
{{- fail (printf "lameDuckDuration: %s is below 30s, the least the broker (like nats-server) accepts" .Values.lameDuckDuration) -}}
{{- end -}}
{{- if and (include "nats-mini.webhookEnabled" .) (eq (int64 .Values.operator.metricsPort) (int64 (include "nats-mini.webhookPort" .))) -}}
{{- fail (printf "operator.metricsPort: %s is the webhook's port; pick another or set operator.webhook.enabled=false" (include "nats-mini.webhookPort" .)) -}}
{{- end -}}
{{- if gt $ldm 3600000000000 -}}
{{- fail (printf "lameDuckDuration: %s is longer than 1h" .Values.lameDuckDuration) -}}
{{- end -}}
{{- end -}}

{{/*
The broker's config file, line for line what the operator writes (render/config.rs) apart from
the header comment. Sizes are byte counts, durations the validated text.
*/}}
{{- define "nats-mini.config" -}}
{{- $name := include "nats-mini.fullname" . -}}
{{- $l := .Values.nats.limits -}}
# nats-mini configuration of Helm release {{ .Release.Namespace }}/{{ .Release.Name }}, written by the nats-mini chart.
# Do not edit: helm upgrade overwrites this file. The brokers reload it when it changes.
# Secrets appear only as $VARIABLES, which the pod sets from Secret keys.

server_name: $POD_NAME
listen: "0.0.0.0:4222"
http: "0.0.0.0:{{ int64 .Values.monitoring.port }}"
{{- if not (kindIs "invalid" $l.maxConnections) }}
max_connections: {{ int64 $l.maxConnections }}
{{- end }}
{{- range $pair := list (list "max_payload" "maxPayload") (list "max_pending" "maxPending") (list "max_control_line" "maxControlLine") }}
{{- $v := index $l (index $pair 1) }}
{{- if not (kindIs "invalid" $v) }}
{{ index $pair 0 }}: {{ include "nats-mini.size" (list (printf "nats.limits.%s" (index $pair 1)) $v) }}
{{- end }}
{{- end }}
{{- range $pair := list (list "write_deadline" "writeDeadline") (list "ping_interval" "pingInterval") (list "busy_poll" "busyPoll") }}
{{- $v := index $l (index $pair 1) }}
{{- if not (kindIs "invalid" $v) }}
{{ index $pair 0 }}: "{{ $v }}"
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" $l.maxPingsOut) }}
ping_max: {{ int64 $l.maxPingsOut }}
{{- end }}
lame_duck_duration: "{{ .Values.lameDuckDuration }}"
lame_duck_grace_period: "10s"
{{- if or (include "nats-mini.authToken" .) (include "nats-mini.authUsers" .) }}

authorization {
{{- if include "nats-mini.authToken" . }}
  token: $NATS_TOKEN
{{- end }}
{{- if include "nats-mini.authUsers" . }}
  users: [
{{- range $i, $u := .Values.auth.users.users }}
    { user: "{{ $u.username }}", password: $NATS_USER_{{ $i }}_PASSWORD }
{{- end }}
  ]
{{- end }}
}
{{- end }}
{{- if .Values.tls.secretName }}

tls {
  cert_file: "/etc/nats-mini-tls/tls.crt"
  key_file: "/etc/nats-mini-tls/tls.key"
{{- if .Values.tls.verifyClients }}
  ca_file: "/etc/nats-mini-tls/ca.crt"
  verify: true
{{- end }}
}
{{- end }}

cluster {
  name: "{{ include "nats-mini.clusterName" . }}"
  listen: "0.0.0.0:{{ int64 .Values.cluster.port }}"
  no_advertise: true
{{- if gt (int64 .Values.replicas) 0 }}
  routes: [
{{- range $i := until (int .Values.replicas) }}
    "nats://{{ $name }}-{{ $i }}.{{ $name }}-headless.{{ $.Release.Namespace }}.svc.{{ $.Values.clusterDomain }}:{{ int64 $.Values.cluster.port }}"
{{- end }}
  ]
{{- else }}
  routes: []
{{- end }}
}
{{ end -}}

{{/* Resource requirements with every quantity as a string, as Kubernetes' Quantity type
serializes it (cpu: 4 becomes "4", cpu: 0.5 becomes "0.5"). */}}
{{- define "nats-mini.resources" -}}
{{- $out := dict -}}
{{- range $section, $items := . -}}
{{- if and (has $section (list "requests" "limits")) $items -}}
{{- $q := dict -}}
{{- range $k, $v := $items -}}
{{- if kindIs "string" $v -}}
{{- $_ := set $q $k $v -}}
{{- else if eq (float64 $v) (floor (float64 $v)) -}}
{{- $_ := set $q $k (printf "%d" (int64 $v)) -}}
{{- else -}}
{{- $_ := set $q $k (toString $v) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $out $section $q -}}
{{- else if $items -}}
{{- $_ := set $out $section $items -}}
{{- end -}}
{{- end -}}
{{- if $out -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}

{{/* The pod security context: the restricted defaults, each top-level field the user set
replacing the default (no deep merge, as the operator does), plus somaxconn in sysctls mode. */}}
{{- define "nats-mini.podSecurityContext" -}}
{{- $ctx := dict "runAsNonRoot" true "runAsUser" 65532 "runAsGroup" 65532 "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- range $k, $v := .Values.pod.securityContext -}}
{{- $_ := set $ctx $k $v -}}
{{- end -}}
{{- if eq .Values.tuning.mode "sysctls" -}}
{{- $sysctls := list -}}
{{- range (get $ctx "sysctls" | default list) -}}
{{- if ne .name "net.core.somaxconn" -}}
{{- $sysctls = append $sysctls . -}}
{{- end -}}
{{- end -}}
{{- $sysctls = append $sysctls (dict "name" "net.core.somaxconn" "value" (printf "%d" (int64 .Values.tuning.somaxconn))) -}}
{{- $_ := set $ctx "sysctls" $sysctls -}}
{{- end -}}
{{- toYaml $ctx -}}
{{- end -}}

{{/* Names of the operator's objects. */}}
{{- define "nats-mini.operatorName" -}}
{{- printf "%s-operator" (include "nats-mini.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels selecting the operator's pods. */}}
{{- define "nats-mini.operatorSelectorLabels" -}}
app.kubernetes.io/component: operator
app.kubernetes.io/instance: {{ include "nats-mini.fullname" . }}
app.kubernetes.io/name: nats-mini-operator
{{- end -}}

{{/* Labels of the operator's objects. */}}
{{- define "nats-mini.operatorLabels" -}}
{{ include "nats-mini.operatorSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Whether the sidecar-injection webhook is rendered (it needs the operator). */}}
{{- define "nats-mini.webhookEnabled" -}}
{{- if and .Values.operator.enabled .Values.operator.webhook.enabled }}true{{ end -}}
{{- end -}}

{{/* The container port and path of the webhook (the operator's WEBHOOK_ADDR default). */}}
{{- define "nats-mini.webhookPort" -}}8443{{- end -}}
{{- define "nats-mini.webhookCertDir" -}}/etc/nats-mini-operator/webhook-tls{{- end -}}

{{/*
The chart-generated webhook certificates (no cert-manager), as YAML {ca, crt, key} of PEM
text: the existing Secret's when the cluster has one (helm upgrade keeps them), else a new CA
and a serving certificate for SERVICE, SERVICE.NAMESPACE, SERVICE.NAMESPACE.svc and
SERVICE.NAMESPACE.svc.CLUSTER_DOMAIN signed by it. Generated once per render and kept in
.Values, so the Secret, the caBundle and the Deployment's checksum all see the same ones
(every call of genCA gives a new CA).
*/}}
{{- define "nats-mini.webhookCerts" -}}
{{- $cache := "natsMiniWebhookCerts" -}}
{{- if not (hasKey .Values $cache) -}}
{{- $op := include "nats-mini.operatorName" . -}}
{{- $svc := printf "%s-webhook" $op -}}
{{- $ns := .Release.Namespace -}}
{{- $certs := dict -}}
{{- $existing := lookup "v1" "Secret" $ns (printf "%s-webhook-cert" $op) -}}
{{- $data := dig "data" dict $existing -}}
{{- if and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key") -}}
{{- $certs = dict "ca" (b64dec (index $data "ca.crt")) "crt" (b64dec (index $data "tls.crt")) "key" (b64dec (index $data "tls.key")) -}}
{{- else -}}
{{- $days := int .Values.operator.webhook.certValidityDays -}}
{{- $ca := genCA (printf "%s-webhook-ca" $op) $days -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $names $days $ca -}}
{{- $certs = dict "ca" $ca.Cert "crt" $cert.Cert "key" $cert.Key -}}
{{- end -}}
{{- $_ := set .Values $cache $certs -}}
{{- end -}}
{{- toYaml (index .Values $cache) -}}
{{- end -}}
