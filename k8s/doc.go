// Package k8s owns the Kubernetes manifests of the retention job: the kustomize base (the CronJob
// and its ConfigMap), the same base with the CronJob suspended, the migration Job, the sharded Job
// and the dry-run Job. Its Go code renders those manifests and decodes them strictly into the
// Kubernetes API types, so that the tests can check the invariants the job depends on (exit
// codes, deadlines, shutdown grace, pod security) and that the walkthrough in README.md agrees
// with them.
package k8s
