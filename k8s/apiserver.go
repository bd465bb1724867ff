package k8s

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/batch/install" // batch/v1 into legacyscheme: defaults, conversions
	_ "k8s.io/kubernetes/pkg/apis/core/install"  // v1 into legacyscheme
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	"k8s.io/kubernetes/pkg/registry/batch/cronjob"
	"k8s.io/kubernetes/pkg/registry/batch/job"
	"k8s.io/kubernetes/pkg/registry/core/configmap"
	"k8s.io/kubernetes/pkg/registry/core/secret"
	"k8s.io/kubernetes/pkg/registry/networking/networkpolicy"
)

// resource is one kind the API server serves: its resource name and its registry's strategy.
type resource struct {
	name     string
	strategy rest.RESTCreateStrategy
}

// resources are the kinds the manifests ship, with the API server's own create strategies.
var resources = map[schema.GroupKind]resource{
	{Group: "batch", Kind: "CronJob"}:                   {"cronjobs", cronjob.Strategy},
	{Group: "batch", Kind: "Job"}:                       {"jobs", job.Strategy},
	{Group: "", Kind: "ConfigMap"}:                      {"configmaps", configmap.Strategy},
	{Group: "", Kind: "Secret"}:                         {"secrets", secret.Strategy},
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}: {"networkpolicies", networkpolicy.Strategy},
}

// strictYAML decodes like the API server with fieldValidation=Strict (kubectl's default): an
// unknown or duplicate field is an error.
var strictYAML = sync.OnceValue(func() *json.Serializer {
	s := legacyscheme.Scheme
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Yaml: true, Strict: true})
})

// ErrWarnings is returned by ValidateCreate when the API server would accept an object but
// answer with warnings (a deprecated field, a name that is not a DNS label, ...). The tests treat
// them as failures.
var ErrWarnings = errors.New("the API server warns")

// ValidateCreate runs one YAML document through what the API server does with a create request
// of it: strict decoding into the versioned type, defaulting, conversion to the internal type,
// then rest.BeforeCreate with the registry's strategy (system fields, a generated name, namespace
// checks, PrepareForCreate, the strategy's and the declarative validation, object metadata
// validation, warnings). A validation error is returned as the server's Invalid error; warnings
// are returned wrapped in ErrWarnings. Objects are created in namespace "default" unless they
// name their own.
func ValidateCreate(doc []byte) error {
	versioned, gvk, err := strictYAML().Decode(doc, nil, nil)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	res, ok := resources[gvk.GroupKind()]
	if !ok {
		return fmt.Errorf("no API server strategy for %s in these tests", gvk)
	}
	strategy := res.strategy
	scheme := legacyscheme.Scheme
	scheme.Default(versioned)
	obj, err := scheme.ConvertToVersion(versioned, schema.GroupVersion{Group: gvk.Group, Version: runtime.APIVersionInternal})
	if err != nil {
		return fmt.Errorf("convert %s to the internal version: %w", gvk, err)
	}

	objMeta, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	ns := objMeta.GetNamespace()
	if ns == "" && strategy.NamespaceScoped() {
		ns = metav1.NamespaceDefault
	}
	var warnings recorder
	ctx := genericapirequest.WithNamespace(context.Background(), ns)
	ctx = genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{
		IsResourceRequest: true, Verb: "create", APIPrefix: "apis",
		APIGroup: gvk.Group, APIVersion: gvk.Version, Namespace: ns, Resource: res.name,
	})
	ctx = warning.WithWarningRecorder(ctx, &warnings)

	// What the registry's store does before BeforeCreate.
	rest.FillObjectMetaSystemFields(objMeta)
	if objMeta.GetGenerateName() != "" && objMeta.GetName() == "" {
		objMeta.SetName(strategy.GenerateName(objMeta.GetGenerateName()))
	}
	if err := rest.BeforeCreate(strategy, ctx, obj); err != nil {
		return err
	}
	if len(warnings) > 0 {
		return fmt.Errorf("%w: %s", ErrWarnings, strings.Join(warnings, "; "))
	}
	return nil
}

// recorder collects the warnings the API server would send back.
type recorder []string

func (r *recorder) AddWarning(_, text string) { *r = append(*r, text) }
