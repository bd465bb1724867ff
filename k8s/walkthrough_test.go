package k8s

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// The docs that tell a user what to run on the cluster, relative to this module.
const (
	walkthroughPath = "README.md"
	guidePath       = "../docs/GUIDE.md"
	operationsPath  = "../docs/OPERATIONS.md"
	// guideSection is the part of the guide about Kubernetes.
	guideSection = "Deploying on Kubernetes"
	// stepsSection is the walkthrough's numbered steps.
	stepsSection = "Deploy, step by step"
	// nsVar is the namespace every kubectl command of the docs names.
	nsVar = "$NS"
)

// docCommands returns every command the docs about Kubernetes show: the walkthrough, the guide's
// Kubernetes section, the operations guide, and the comments of the manifests.
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	cmds := readMarkdown(t, walkthroughPath).commands
	guide := readMarkdown(t, guidePath)
	cmds = append(cmds, guide.within(guide.section(t, guideSection))...)
	cmds = append(cmds, readMarkdown(t, operationsPath).commands...)
	manifests, err := filepath.Glob("*/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, manifests)
	for _, m := range manifests {
		cmds = append(cmds, yamlCommentCommands(t, m)...)
	}
	return cmds
}

func TestDocs_EveryKubectlCommandNamesTheNamespace(t *testing.T) {
	t.Parallel()
	n := 0
	for _, c := range docCommands(t) {
		if _, ok := kubectlArgs(c.words); !ok {
			continue
		}
		n++
		if c.is("create", "namespace") {
			require.True(t, c.is("create", "namespace", nsVar), "%s: create the namespace %s", c, nsVar)
			continue
		}
		require.Equal(t, []string{nsVar}, c.flag("-n", "--namespace"),
			"%s: name the namespace with -n %s, as every other command does", c, nsVar)
	}
	require.Greater(t, n, 30, "the docs' kubectl commands were not found")
}

func TestDocs_FilesTheCommandsNameExist(t *testing.T) {
	t.Parallel()
	kustomizations := 0
	for _, c := range docCommands(t) {
		if _, ok := kubectlArgs(c.words); ok {
			files, dirs := c.files()
			for _, dir := range dirs {
				require.True(t, strings.HasPrefix(dir, "k8s/"), "%s: a kustomization of this repository, from its root", c)
				_, err := os.Stat(filepath.Join("..", dir, "kustomization.yaml"))
				require.NoError(t, err, "%s", c)
				kustomizations++
			}
			for _, file := range files {
				if file == "-" {
					continue
				}
				require.True(t, strings.HasPrefix(file, "k8s/"), "%s: a file of this repository, from its root", c)
				st, err := os.Stat(filepath.Join("..", file))
				require.NoError(t, err, "%s", c)
				require.True(t, st.Mode().IsRegular(), "%s", c)
			}
		}
		// Any other path of this repository a command names (sed's input, cd's directory).
		for _, w := range c.words {
			if (strings.HasPrefix(w, "k8s/") || strings.HasPrefix(w, "sql/")) && !strings.Contains(w, "$") {
				_, err := os.Stat(filepath.Join("..", w))
				require.NoError(t, err, "%s", c)
			}
		}
	}
	require.GreaterOrEqual(t, kustomizations, 6, "the docs' kubectl -k commands were not found")
}

// walkthrough is the walkthrough's numbered steps and the commands that matter to their order.
type walkthrough struct {
	doc   markdownDoc
	steps docSection
	cmds  []docCommand
}

func readWalkthrough(t *testing.T) walkthrough {
	t.Helper()
	doc := readMarkdown(t, walkthroughPath)
	steps := doc.section(t, stepsSection)
	return walkthrough{doc: doc, steps: steps, cmds: doc.within(steps)}
}

// find returns the index in w.cmds of the only command for which match is true.
func (w walkthrough) find(t *testing.T, what string, match func(docCommand) bool) int {
	t.Helper()
	found := -1
	for i, c := range w.cmds {
		if match(c) {
			require.Equal(t, -1, found, "%s: %s and %s", what, w.cmds[max(found, 0)], c)
			found = i
		}
	}
	require.NotEqual(t, -1, found, "the steps have no command to %s", what)
	return found
}

// suspendPatch returns the value a kubectl patch command gives the CronJob's spec.suspend, and
// whether it gives one.
func suspendPatch(t *testing.T, c docCommand) (bool, bool) {
	t.Helper()
	patches := c.flag("-p", "--patch")
	if len(patches) != 1 {
		return false, false
	}
	var p struct {
		Spec struct{ Suspend *bool }
	}
	require.NoError(t, json.Unmarshal([]byte(patches[0]), &p), "%s", c)
	if p.Spec.Suspend == nil {
		return false, false
	}
	return *p.Spec.Suspend, true
}

func TestWalkthrough_StepsAreNumberedInOrder(t *testing.T) {
	t.Parallel()
	w := readWalkthrough(t)
	step := regexp.MustCompile(`^(\d+)\. `)
	n := 0
	for _, s := range w.doc.sections {
		if s.level != 3 || s.start < w.steps.start || s.start >= w.steps.end {
			continue
		}
		m := step.FindStringSubmatch(s.title)
		if m == nil {
			continue
		}
		n++
		require.Equal(t, strconv.Itoa(n), m[1], "step %q", s.title)
	}
	require.Greater(t, n, 5)
}

// TestWalkthrough_NothingRunsBeforeTheDryRunAndTheFirstRun checks the order a first deployment
// takes: the Secrets, the migration, the base applied with its CronJob suspended (never applied
// and patched afterwards), a dry run, the first run by hand, and only then the CronJob started.
func TestWalkthrough_NothingRunsBeforeTheDryRunAndTheFirstRun(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cronJob := f.base.CronJobs[0].Name
	w := readWalkthrough(t)

	migrate := w.find(t, "migrate", func(c docCommand) bool {
		return c.is("apply") && slices.Equal(c.flag("-k"), []string{"k8s/migrate"})
	})
	// Every Secret is made before the first pod that reads it; step 4 may replace migrate's.
	firstSecret := -1
	for i, c := range w.cmds {
		if c.is("create", "secret", "generic") {
			if firstSecret == -1 {
				firstSecret = i
			}
			if i > migrate {
				require.True(t, c.is("create", "secret", "generic", migrateDBSecretName), "%s: after the migration", c)
			}
		}
	}
	require.NotEqual(t, -1, firstSecret, "the steps create no Secret")
	for _, name := range []string{dbSecretName, migrateDBSecretName, keySecretName} {
		require.True(t, slices.ContainsFunc(w.cmds[:migrate], func(c docCommand) bool {
			return c.is("create", "secret", "generic", name)
		}), "%s is made before the migration", name)
	}
	suspended := w.find(t, "apply the base with the CronJob suspended", func(c docCommand) bool {
		return c.is("apply") && slices.Equal(c.flag("-k"), []string{"k8s/suspended"})
	})
	dryRun := w.find(t, "create the dry run", func(c docCommand) bool {
		return slices.Contains(c.words, "k8s/oneoff/dry-run-job.yaml")
	})
	firstRun := w.find(t, "create the first run", func(c docCommand) bool {
		return c.is("create", "job") && slices.Contains(c.words, "--from=cronjob/"+cronJob)
	})
	start := w.find(t, "un-suspend the CronJob", func(c docCommand) bool {
		v, ok := suspendPatch(t, c)
		return c.is("patch", "cronjob", cronJob) && ok && !v
	})
	order := []int{firstSecret, migrate, suspended, dryRun, firstRun, start}
	require.True(t, slices.IsSorted(order), "the steps must go: Secrets, migrate, apply suspended, dry run, first run, "+
		"un-suspend; they are at commands %v", order)

	for i, c := range w.cmds[:start] {
		// Applying the base over the suspended overlay would un-suspend the CronJob.
		require.False(t, c.is("apply") && slices.Contains(c.flag("-k"), "k8s/base"), "%s: before the CronJob may start", c)
		if i < suspended {
			require.False(t, c.is("apply") && len(c.flag("-k")) > 0 && i != migrate, "%s: applied before the suspended base", c)
		}
		// The CronJob is suspended by the manifest, not by a patch after an apply.
		_, patched := suspendPatch(t, c)
		require.False(t, patched, "%s: the first apply must create nothing that runs", c)
	}
}

func TestSuspendedOverlay_IsTheBaseWithTheCronJobSuspended(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Len(t, f.suspended.CronJobs, 1)
	require.Equal(t, ptr.To(true), f.suspended.CronJobs[0].Spec.Suspend, "the first apply creates nothing that runs")
	require.False(t, ptr.Deref(f.base.CronJobs[0].Spec.Suspend, false), "the base, applied from step 8 on, runs")

	// Un-suspended, it is the base: nothing else differs between the first apply and the later ones.
	unsuspended := f.suspended
	unsuspended.CronJobs = slices.Clone(f.suspended.CronJobs)
	unsuspended.CronJobs[0].Spec.Suspend = f.base.CronJobs[0].Spec.Suspend
	require.Equal(t, f.base, unsuspended)
}

// TestWalkthrough_FirstRunLiftsTheCap checks that the step before the CronJob starts explains
// the safety cap's exit code, and that its command lifts every cap the ConfigMap sets, for that
// Job only, with the variables of the binary's own flags.
func TestWalkthrough_FirstRunLiftsTheCap(t *testing.T) {
	t.Parallel()
	f := setup(t)
	w := readWalkthrough(t)
	cronJob := f.base.CronJobs[0].Name

	create := w.find(t, "create the first run", func(c docCommand) bool {
		return c.is("create", "job") && slices.Contains(c.words, "--from=cronjob/"+cronJob)
	})
	require.Less(t, create+2, len(w.cmds))
	setEnv, apply := w.cmds[create+1], w.cmds[create+2]
	for _, c := range []docCommand{setEnv, apply} {
		require.Equal(t, w.cmds[create].snippet, c.snippet, "one pipeline: %s", c)
	}
	require.Equal(t, []string{"client"}, w.cmds[create].flag("--dry-run"), "the Job is changed before it is created")
	require.Equal(t, []string{"yaml"}, w.cmds[create].flag("-o"))
	require.True(t, setEnv.is("set", "env"), "%s", setEnv)
	require.Contains(t, setEnv.words, "--local")
	require.Equal(t, []string{"-"}, setEnv.flag("-f"))
	require.Equal(t, []string{containerName}, setEnv.flag("-c"))
	require.True(t, apply.is("create"), "%s", apply)
	require.Equal(t, []string{"-"}, apply.flag("-f"))

	args, _ := kubectlArgs(setEnv.words)
	set := map[string]string{}
	for _, a := range positional(args)[2:] {
		name, value, ok := strings.Cut(a, "=")
		require.True(t, ok, "%s: %q", setEnv, a)
		set[name] = value
	}
	// Every cap the ConfigMap sets is lifted; the Job's own env wins over its envFrom.
	lifted := 0
	for _, name := range []string{"RETENTION_ABORT_ABOVE", "RETENTION_ABORT_ABOVE_PERCENT"} {
		v, err := strconv.ParseFloat(cmp.Or(f.config[name], "0"), 64)
		require.NoError(t, err, name)
		if v != 0 {
			require.Equal(t, "0", set[name], "%s: the ConfigMap's %s=%s would abort the first run", setEnv, name, f.config[name])
			lifted++
		}
	}
	require.Positive(t, lifted, "the base ships a cap (TestConfigMap_ShipsASafetyCap)")
	help := retentionHelp(t, "run")
	for name := range set {
		flag := "--" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "RETENTION_")), "_", "-")
		require.Contains(t, help, flag, "%s: %s is no flag's variable", setEnv, name)
		require.Contains(t, help, "$"+name, "%s: %s is no flag's variable", setEnv, name)
	}

	// The step says what the cap does and which exit code it gives, before the CronJob starts.
	step := w.doc.sectionOf(setEnv.line)
	require.Contains(t, step.text, fmt.Sprintf("exits %d", exitcode.Aborted))
	for name := range set {
		require.Contains(t, step.text, fmt.Sprintf("`%s: %q`", name, f.config[name]), "the step quotes the ConfigMap's cap")
	}
}

// retentionHelp builds the binary and returns what `retention help COMMAND` prints.
func retentionHelp(t *testing.T, command string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the binary whose help the docs quote")
	bin := filepath.Join(t.TempDir(), "retention")
	build := exec.CommandContext(t.Context(), gobin, "build", "-o", bin, "./cmd/retention")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/retention: %s", out)
	out, err = exec.CommandContext(t.Context(), bin, "help", command).CombinedOutput()
	require.NoError(t, err, "retention help %s: %s", command, out)
	return string(out)
}

// codeList matches a list of exit codes as the docs write it: "1, 2, 4 and 6".
var codeList = `(\d+(?:, \d+)*(?: and \d+)?)`

// parseCodes reads a codeList.
func parseCodes(t *testing.T, s string) []int32 {
	t.Helper()
	var codes []int32
	for _, f := range regexp.MustCompile(`\d+`).FindAllString(s, -1) {
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		codes = append(codes, int32(n))
	}
	slices.Sort(codes)
	return codes
}

// codesIn returns the codes of every match of re's first group in text.
func codesIn(t *testing.T, text, re string) []int32 {
	t.Helper()
	var codes []int32
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(text, -1) {
		codes = append(codes, parseCodes(t, m[1])...)
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// TestDocs_StateTheExitCodesThePodFailurePolicyFailsTheJobOn reads the codes that fail a Job at
// once from every place the docs list them, and compares each with the manifests' FailJob rule.
func TestDocs_StateTheExitCodesThePodFailurePolicyFailsTheJobOn(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var failJob []int32
	for _, tmpl := range f.templates(t) {
		var codes []int32
		for _, r := range tmpl.job.PodFailurePolicy.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailJob {
				require.NotNil(t, r.OnExitCodes, tmpl.name)
				require.Equal(t, batchv1.PodFailurePolicyOnExitCodesOpIn, r.OnExitCodes.Operator, tmpl.name)
				codes = append(codes, r.OnExitCodes.Values...)
			}
		}
		if failJob == nil {
			failJob = codes
		}
		require.Equal(t, failJob, codes, "%s: every Job has the same policy, as the docs say", tmpl.name)
	}
	require.NotEmpty(t, failJob)

	readme, err := os.ReadFile(walkthroughPath)
	require.NoError(t, err)
	guide := readMarkdown(t, guidePath).section(t, guideSection).text

	// The table: | code | meaning | **Job fails at once** |
	var table []int32
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \|.*\| (.*) \|$`).FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[2], "fails at once") {
			table = append(table, parseCodes(t, m[1])...)
		}
	}
	for _, tc := range []struct {
		where string
		codes []int32
	}{
		{"k8s/README.md's table of exit codes", table},
		{"k8s/README.md's podFailurePolicy sentence", codesIn(t, string(readme), "`FailJob` for exit codes "+codeList)},
		{"k8s/README.md's bullets", codesIn(t, string(readme), `\*\*Exit `+codeList+` fails? `)},
		{"docs/GUIDE.md's " + guideSection, codesIn(t, guide, `failing the Job at once on exit `+codeList)},
	} {
		require.Equal(t, failJob, tc.codes, "%s against the manifests' podFailurePolicy", tc.where)
	}
}

// secretRefs returns the Secrets a pod template reads, and the one its DATABASE_URL comes from.
func secretRefs(t *testing.T, tmpl podTemplate) (all []string, db string) {
	t.Helper()
	spec := tmpl.job.Template.Spec
	for _, e := range container(t, spec).Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			all = append(all, e.ValueFrom.SecretKeyRef.Name)
			if e.Name == "DATABASE_URL" {
				db = e.ValueFrom.SecretKeyRef.Name
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			all = append(all, v.Secret.SecretName)
		}
	}
	return all, db
}

// TestDocs_SecretsAreThoseTheManifestsRead checks that the walkthrough creates exactly the Secrets
// the pods read, that migrate reads its own, and that each database URL names the role of
// sql/roles.sql the docs give it.
func TestDocs_SecretsAreThoseTheManifestsRead(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var read []string
	dbOf := map[string]string{}
	for _, tmpl := range f.templates(t) {
		all, db := secretRefs(t, tmpl)
		read = append(read, all...)
		dbOf[tmpl.name] = db
	}
	slices.Sort(read)
	read = slices.Compact(read)

	w := readWalkthrough(t)
	created := map[string]docCommand{}
	for _, c := range w.cmds {
		if c.is("create", "secret", "generic") {
			args, _ := kubectlArgs(c.words)
			name := positional(args)[3]
			if _, ok := created[name]; !ok {
				created[name] = c
			}
		}
	}
	var names []string
	for name := range created {
		names = append(names, name)
	}
	slices.Sort(names)
	require.Equal(t, read, names, "the Secrets the walkthrough creates are those the pods read")

	example, err := ReadFile(secretExample)
	require.NoError(t, err)
	var exampleNames []string
	for _, s := range example.Secrets {
		exampleNames = append(exampleNames, s.Name)
	}
	slices.Sort(exampleNames)
	require.Equal(t, read, exampleNames, secretExample)

	// Migrate connects as the schema's owner, the runs as the job's role: two Secrets.
	require.Equal(t, migrateDBSecretName, dbOf["migrate Job"])
	for _, name := range []string{"base CronJob", "sharded Job", "dry-run Job"} {
		require.Equal(t, dbSecretName, dbOf[name], name)
	}
	roles, err := os.ReadFile("../sql/roles.sql")
	require.NoError(t, err)
	for secret, role := range map[string]string{dbSecretName: "retention_job", migrateDBSecretName: "retention_owner"} {
		require.Contains(t, string(roles), "CREATE ROLE "+role+" ", "sql/roles.sql")
		urls := created[secret].flag("--from-literal")
		require.Len(t, urls, 1, "%s", created[secret])
		require.True(t, strings.HasPrefix(urls[0], "url=postgres://"+role+":"), "%s: the URL of %s", created[secret], role)
		require.Contains(t, w.doc.sectionOf(created[secret].line).text, "`"+role+"`")
	}
}

// TestDocs_SayTheAlertsNeedAPushgateway checks that where the alerts are set up the docs say
// that a CronJob's runs reach Prometheus only through RETENTION_PUSHGATEWAY_URL, and that the
// manifests make it so: the base does not set it, and the PodMonitor does not scrape the runs.
func TestDocs_SayTheAlertsNeedAPushgateway(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const variable = "RETENTION_PUSHGATEWAY_URL"
	_, set := f.config[variable]
	require.False(t, set, "the docs say the base sets no Pushgateway: change them with it")

	mon, err := Render("monitoring")
	require.NoError(t, err)
	require.Len(t, mon.PodMonitors, 1)
	sel, err := metav1.LabelSelectorAsSelector(&mon.PodMonitors[0].Spec.Selector)
	require.NoError(t, err)
	for _, tmpl := range f.templates(t) {
		require.False(t, sel.Matches(labels.Set(tmpl.job.Template.Labels)),
			"%s: the PodMonitor scrapes it, the docs say it is not", tmpl.name)
	}

	w := readWalkthrough(t)
	monitoring := w.find(t, "apply the monitoring", func(c docCommand) bool {
		return c.is("apply") && slices.Equal(c.flag("-k"), []string{"k8s/monitoring"})
	})
	step := w.doc.sectionOf(w.cmds[monitoring].line)
	before, _, _ := strings.Cut(step.text, "```")
	require.Contains(t, before, variable, "step %q sets up the alerts: say it before its commands", step.title)
	rules := mon.PrometheusRules[0].Spec.Groups[0].Rules
	var alerts []string
	for _, r := range rules {
		alerts = append(alerts, r.Alert)
	}
	for _, name := range regexp.MustCompile(`ConvaiRetention\w+`).FindAllString(step.text, -1) {
		require.Contains(t, alerts, name, "step %q names an alert", step.title)
	}

	ops := readMarkdown(t, operationsPath).section(t, "Alerting")
	require.Contains(t, ops.text, variable, "docs/OPERATIONS.md sets up the alerts")
}

// TestWalkthrough_SetsTheImageOfEveryKustomization checks that step 2 sets the image in every
// kustomization that names one, and that the dry run takes the image the Job file holds.
func TestWalkthrough_SetsTheImageOfEveryKustomization(t *testing.T) {
	t.Parallel()
	f := setup(t)
	paths, err := filepath.Glob("*/kustomization.yaml")
	require.NoError(t, err)
	var withImage []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var k struct{ Images []struct{ Name string } }
		require.NoError(t, yaml.Unmarshal(b, &k), p)
		for _, img := range k.Images {
			if img.Name == "convai-retention" {
				withImage = append(withImage, filepath.Dir(p))
			}
		}
	}
	slices.Sort(withImage)

	w := readWalkthrough(t)
	loop := w.find(t, "set the image", func(c docCommand) bool {
		return len(c.words) > 3 && c.words[0] == "for" && c.words[2] == "in"
	})
	dirs := slices.Clone(w.cmds[loop].words[3:])
	slices.Sort(dirs)
	require.Equal(t, withImage, dirs, "%s", w.cmds[loop])
	require.True(t, slices.ContainsFunc(w.cmds[loop+1:], func(c docCommand) bool {
		return slices.Equal(c.words[:min(len(c.words), 4)], []string{"kustomize", "edit", "set", "image"})
	}))

	image := container(t, f.dryRun.Jobs[0].Spec.Template.Spec).Image
	n := 0
	for _, c := range append(w.doc.commands, yamlCommentCommands(t, "oneoff/dry-run-job.yaml")...) {
		if len(c.words) > 1 && c.words[0] == "sed" {
			from := strings.Split(c.words[1], "|")
			require.Len(t, from, 4, "%s", c)
			require.Equal(t, image, from[1], "%s: the dry-run Job's image", c)
			n++
		}
	}
	require.GreaterOrEqual(t, n, 3)
}
