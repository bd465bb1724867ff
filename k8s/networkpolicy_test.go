package k8s

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestNetworkPolicy_LetsThePodsReachOnlyDNSTheDatabaseAndTheAPI checks the base's NetworkPolicy:
// it selects every pod template, and allows out only DNS to the cluster's resolver, PostgreSQL,
// HTTPS (the API) and an in-cluster Pushgateway; in only the scheduler's metrics port.
func TestNetworkPolicy_LetsThePodsReachOnlyDNSTheDatabaseAndTheAPI(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Len(t, f.base.NetworkPolicies, 1)
	np := f.base.NetworkPolicies[0].Spec

	sel, err := metav1.LabelSelectorAsSelector(&np.PodSelector)
	require.NoError(t, err)
	require.False(t, sel.Empty(), "a policy for these pods, not the namespace")
	for _, tmpl := range f.templates(t) {
		require.True(t, sel.Matches(labels.Set(tmpl.job.Template.Labels)), "%s is not covered", tmpl.name)
	}
	require.ElementsMatch(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, np.PolicyTypes)

	require.Len(t, np.Ingress, 1)
	require.Empty(t, np.Ingress[0].From)
	require.Equal(t, []string{"TCP/9090"}, ports(np.Ingress[0].Ports), "only the scheduler's /metrics")

	allowed := map[string][]networkingv1.NetworkPolicyPeer{}
	for _, r := range np.Egress {
		require.NotEmpty(t, r.Ports, "a rule without ports allows every port")
		for _, p := range ports(r.Ports) {
			allowed[p] = r.To
		}
	}
	require.ElementsMatch(t, []string{"UDP/53", "TCP/53", "TCP/5432", "TCP/443", "TCP/9091"}, keys(allowed))
	for _, p := range []string{"UDP/53", "TCP/53"} {
		require.Len(t, allowed[p], 1, "DNS only to the cluster's resolver")
		require.Equal(t, "kube-dns", allowed[p][0].PodSelector.MatchLabels["k8s-app"])
	}
	require.Len(t, allowed["TCP/9091"], 1, "the Pushgateway only inside the cluster")
	require.NotNil(t, allowed["TCP/9091"][0].NamespaceSelector)
	require.Nil(t, allowed["TCP/9091"][0].IPBlock)

	// The API URL the pods use goes out on an allowed port.
	api, err := url.Parse(f.config["CONVAI_API_URL"])
	require.NoError(t, err)
	require.Equal(t, "https", api.Scheme)
	require.Empty(t, api.Port(), "https on 443")
}

func ports(ps []networkingv1.NetworkPolicyPort) []string {
	var out []string
	for _, p := range ps {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out = append(out, string(proto)+"/"+p.Port.String())
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
