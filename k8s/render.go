package k8s

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/yaml"
)

// Objects are rendered manifests, each decoded into its Kubernetes API type.
type Objects struct {
	CronJobs   []batchv1.CronJob
	Jobs       []batchv1.Job
	ConfigMaps []corev1.ConfigMap
	Secrets    []corev1.Secret
	// NetworkPolicies limit what the pods may reach.
	NetworkPolicies []networkingv1.NetworkPolicy
	// PrometheusRules and PodMonitors are custom resources of the Prometheus Operator: the API
	// server checks them against their CRD's schema, which these tests do not have, so they are
	// only decoded strictly into the operator's own types.
	PrometheusRules []monitoringv1.PrometheusRule
	PodMonitors     []monitoringv1.PodMonitor
}

// Render builds the kustomization in dir from the real filesystem, as `kubectl apply -k dir`
// would, runs every object through the API server's create path (ValidateCreate) and decodes it
// with DecodeStrict. A kind that Objects has no field for is an
// error, so that a new kind cannot slip past the tests unchecked.
func Render(dir string) (Objects, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return Objects{}, fmt.Errorf("build %s: %w", dir, err)
	}
	var objs Objects
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			return Objects{}, fmt.Errorf("%s: %s: %w", dir, r.CurId(), err)
		}
		if err := objs.add(doc); err != nil {
			return Objects{}, fmt.Errorf("%s: %s: %w", dir, r.CurId(), err)
		}
	}
	return objs, nil
}

// ReadFile validates (ValidateCreate) and decodes (DecodeStrict) the YAML documents of a plain
// manifest file, one meant for `kubectl create -f`.
func ReadFile(path string) (Objects, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Objects{}, err
	}
	nodes, err := kio.FromBytes(b)
	if err != nil {
		return Objects{}, fmt.Errorf("split %s: %w", path, err)
	}
	var objs Objects
	for i, n := range nodes {
		s, err := n.String()
		if err != nil {
			return Objects{}, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if err := objs.add([]byte(s)); err != nil {
			return Objects{}, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
	}
	return objs, nil
}

func (o *Objects) add(doc []byte) error {
	var tm struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var decode func([]byte) error
	switch tm.APIVersion + " " + tm.Kind {
	case "batch/v1 CronJob":
		decode = func(doc []byte) error { return decodeInto(doc, &o.CronJobs) }
	case "batch/v1 Job":
		decode = func(doc []byte) error { return decodeInto(doc, &o.Jobs) }
	case "v1 ConfigMap":
		decode = func(doc []byte) error { return decodeInto(doc, &o.ConfigMaps) }
	case "v1 Secret":
		decode = func(doc []byte) error { return decodeInto(doc, &o.Secrets) }
	case "networking.k8s.io/v1 NetworkPolicy":
		decode = func(doc []byte) error { return decodeInto(doc, &o.NetworkPolicies) }
	case "monitoring.coreos.com/v1 PrometheusRule":
		return decodeInto(doc, &o.PrometheusRules)
	case "monitoring.coreos.com/v1 PodMonitor":
		return decodeInto(doc, &o.PodMonitors)
	default:
		return fmt.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
	}
	if err := ValidateCreate(doc); err != nil {
		return err
	}
	return decode(doc)
}

func decodeInto[T any](doc []byte, list *[]T) error {
	var v T
	if err := DecodeStrict(doc, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// DecodeStrict decodes one YAML document into v, a pointer to a Kubernetes API type. It fails on
// duplicate keys, on fields the type does not have, and on fields whose name differs only in case
// (which encoding/json alone would accept, and the API server would not).
func DecodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("yaml to json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	if dec.More() {
		return errors.New("trailing data after the object")
	}
	back, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %T: %w", v, err)
	}
	var in, out any
	if err := json.Unmarshal(js, &in); err != nil {
		return err
	}
	if err := json.Unmarshal(back, &out); err != nil {
		return err
	}
	return keysKept("", in, out)
}

// keysKept reports the first field of in that did not survive the round trip to out: a name
// matched only case-insensitively. Fields with a zero value may be dropped by omitempty.
func keysKept(path string, in, out any) error {
	switch in := in.(type) {
	case map[string]any:
		outMap, _ := out.(map[string]any)
		for k, v := range in {
			ov, ok := outMap[k]
			if !ok {
				if isZero(v) {
					continue
				}
				return fmt.Errorf("field %s.%s is not a field of the type (check its spelling and case)", path, k)
			}
			if err := keysKept(path+"."+k, v, ov); err != nil {
				return err
			}
		}
	case []any:
		outList, _ := out.([]any)
		for i, v := range in {
			if i >= len(outList) {
				return fmt.Errorf("field %s[%d] is lost in decoding", path, i)
			}
			if err := keysKept(fmt.Sprintf("%s[%d]", path, i), v, outList[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// isZero reports whether v, decoded from JSON, is a value that omitempty leaves out.
func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case float64:
		return v == 0
	case string:
		return v == ""
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}
