package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tipreaper/tipreaper/internal/policy"
)

// The parts of the Kubernetes objects the tests look at.
type (
	object struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   meta              `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`       // ConfigMap
		StringData map[string]string `yaml:"stringData"` // Secret
		Spec       struct {
			Replicas    *int        `yaml:"replicas"` // Deployment
			Template    podTemplate `yaml:"template"` // Deployment
			Schedule    string      `yaml:"schedule"` // CronJob
			JobTemplate struct {
				Spec struct {
					Template podTemplate `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"` // CronJob
		} `yaml:"spec"`
		file string
	}
	meta struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Annotations map[string]string `yaml:"annotations"`
	}
	podTemplate struct {
		Metadata meta `yaml:"metadata"`
		Spec     struct {
			TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				RunAsUser    *int  `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			Containers []container `yaml:"containers"`
			Volumes    []struct {
				Name      string                 `yaml:"name"`
				ConfigMap *struct{ Name string } `yaml:"configMap"`
				EmptyDir  *struct{}              `yaml:"emptyDir"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
				ResourceFieldRef *struct {
					Resource string `yaml:"resource"`
				} `yaml:"resourceFieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		EnvFrom []map[string]any `yaml:"envFrom"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"` // a number or a port name
		} `yaml:"httpGet"`
	}
)

const k8sDir = "kubernetes"

// decodeObjects reads every YAML document of r.
func decodeObjects(t *testing.T, name string, r io.Reader) []object {
	t.Helper()
	var objs []object
	dec := yaml.NewDecoder(r)
	dec.KnownFields(false)
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(t, err, name)
		if o.Kind == "" {
			continue
		}
		require.NotEmpty(t, o.APIVersion, "%s: %s without apiVersion", name, o.Kind)
		o.file = name
		objs = append(objs, o)
	}
}

// manifests parses every YAML file under deploy/kubernetes (kustomizations included).
func manifests(t *testing.T) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir(k8sDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		objs = append(objs, decodeObjects(t, path, f)...)
		return nil
	})
	require.NoError(t, err)
	return objs
}

func findObject(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s in %s", kind, name, k8sDir)
	return object{}
}

// podEnv is what the container's environment holds, as the config's ${VAR} lookup sees it: literal
// values, and for a secretKeyRef the value of secret.example.yaml.
func podEnv(t *testing.T, where string, c container, secret object) map[string]string {
	t.Helper()
	require.Empty(t, c.EnvFrom, "%s: envFrom would hide which variables the config gets; list them in env", where)
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			require.Equal(t, secret.Metadata.Name, ref.Name, "%s: env %s", where, e.Name)
			v, ok := secret.StringData[ref.Key]
			require.True(t, ok, "%s: env %s reads key %q, which secret.example.yaml does not have", where, e.Name, ref.Key)
			env[e.Name] = v
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = "268435456"
		default:
			t.Fatalf("%s: env %s: unknown valueFrom", where, e.Name)
		}
	}
	return env
}

func TestKubernetesManifests(t *testing.T) {
	objs := manifests(t)
	secret := findObject(t, objs, "Secret", "tipreaper")
	configMap := findObject(t, objs, "ConfigMap", "tipreaper-config")
	configText, ok := configMap.Data[filepath.Base(containerConfigPath)]
	require.True(t, ok, "the ConfigMap has a key %s", filepath.Base(containerConfigPath))

	deployment := findObject(t, objs, "Deployment", "tipreaper")
	cronJob := findObject(t, objs, "CronJob", "tipreaper")
	pods := []struct {
		name    string
		command string
		tmpl    podTemplate
	}{
		{"Deployment", "run", deployment.Spec.Template},
		{"CronJob", "once", cronJob.Spec.JobTemplate.Spec.Template},
	}

	t.Run("the ConfigMap's config validates against config.schema.json, as an editor checks it", func(t *testing.T) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(policy.Schema()))
		require.NoError(t, err)
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		require.NoError(t, c.AddResource("config.schema.json", doc))
		sch, err := c.Compile("config.schema.json")
		require.NoError(t, err)
		var v any
		require.NoError(t, yaml.Unmarshal([]byte(configText), &v))
		b, err := json.Marshal(v)
		require.NoError(t, err)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		require.NoError(t, err)
		require.NoError(t, sch.Validate(inst))
	})
	t.Run("the Deployment runs two replicas", func(t *testing.T) {
		require.NotNil(t, deployment.Spec.Replicas)
		require.Equal(t, 2, *deployment.Spec.Replicas)
	})
	t.Run("the CronJob has a valid schedule", func(t *testing.T) {
		cfg := &policy.Config{File: cronJob.file, Schedule: cronJob.Spec.Schedule}
		require.NoError(t, cfg.ValidateSchedule())
	})

	for _, p := range pods {
		t.Run(p.name, func(t *testing.T) {
			require.Len(t, p.tmpl.Spec.Containers, 1)
			c := p.tmpl.Spec.Containers[0]
			where := p.name + " container " + c.Name

			t.Run("runs the image's reaper entrypoint with a valid command line", func(t *testing.T) {
				require.Empty(t, c.Command, "the image's ENTRYPOINT [\"reaper\"] is the command")
				require.NotEmpty(t, c.Args)
				require.Equal(t, p.command, c.Args[0])
				requireValidCommand(t, where, c.Args)
				i := slices.Index(c.Args, "--config")
				require.True(t, i >= 0 && i+1 < len(c.Args) && c.Args[i+1] == containerConfigPath, "%s: --config %s", where, containerConfigPath)
			})

			t.Run("mounts the ConfigMap where --config points", func(t *testing.T) {
				requireMount(t, p.tmpl, c, filepath.Dir(containerConfigPath), func(v string) bool { return v == "configMap:"+configMap.Metadata.Name })
			})

			t.Run("provides every ${VAR} the config uses, and the config is valid with them", func(t *testing.T) {
				env := podEnv(t, where, c, secret)
				cfg, err := policy.Parse(containerConfigPath, []byte(configText), func(k string) (string, bool) {
					v, ok := env[k]
					return v, ok
				})
				require.NoError(t, err, "the ConfigMap's reaper.yaml, with the pod's environment")
				require.True(t, strings.HasPrefix(cfg.Database.URL.Reveal(), "postgres"),
					"on PostgreSQL: replicas share the account leases, and a pod's emptyDir is no place for the audit")
				if p.name == "Deployment" {
					_, port, err := net.SplitHostPort(cfg.HTTP.Listen)
					require.NoError(t, err, "http.listen")
					requireProbes(t, where, p.tmpl, c, port)
				}
			})

			t.Run("runs as non-root on a read-only root file system without privilege escalation", func(t *testing.T) {
				sc := p.tmpl.Spec.SecurityContext
				require.True(t, sc.RunAsNonRoot != nil && *sc.RunAsNonRoot)
				require.True(t, sc.RunAsUser != nil && *sc.RunAsUser != 0)
				csc := c.SecurityContext
				require.True(t, csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem)
				require.True(t, csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation)
				require.Equal(t, []string{"ALL"}, csc.Capabilities.Drop)
				// With a read-only root, what the process writes needs a volume: the state dir and /tmp.
				requireMount(t, p.tmpl, c, "/var/lib/tipreaper", func(v string) bool { return v == "emptyDir" })
				requireMount(t, p.tmpl, c, "/tmp", func(v string) bool { return v == "emptyDir" })
			})

			t.Run("requests resources and limits memory", func(t *testing.T) {
				require.NotEmpty(t, c.Resources.Requests["cpu"])
				require.NotEmpty(t, c.Resources.Requests["memory"])
				require.NotEmpty(t, c.Resources.Limits["memory"])
			})

			t.Run("gives the drain time to finish before the kill", func(t *testing.T) {
				g := p.tmpl.Spec.TerminationGracePeriodSeconds
				require.NotNil(t, g)
				require.Greater(t, time.Duration(*g)*time.Second, stopBudget(t))
			})
		})
	}
}

// requireMount fails unless c mounts, at path, a volume of tmpl for which ok(kind) holds; kind is
// "configMap:NAME" or "emptyDir".
func requireMount(t *testing.T, tmpl podTemplate, c container, path string, ok func(string) bool) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range tmpl.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			kind := ""
			switch {
			case v.ConfigMap != nil:
				kind = "configMap:" + v.ConfigMap.Name
			case v.EmptyDir != nil:
				kind = "emptyDir"
			}
			require.True(t, ok(kind), "%s is a %s volume", path, kind)
			return
		}
		t.Fatalf("volume %s mounted at %s is not declared", m.Name, path)
	}
	t.Fatalf("nothing mounted at %s", path)
}

// requireProbes checks the probes and the scrape annotations against the port the config listens on.
func requireProbes(t *testing.T, where string, tmpl podTemplate, c container, listenPort string) {
	t.Helper()
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	require.Equal(t, listenPort, strconv.Itoa(ports["metrics"]), "%s: the port named metrics is http.listen's", where)
	resolve := func(port any) string {
		switch v := port.(type) {
		case int:
			return strconv.Itoa(v)
		case string:
			if n, ok := ports[v]; ok {
				return strconv.Itoa(n)
			}
			return v
		}
		return ""
	}
	for _, pr := range []struct {
		name, path string
		p          *probe
	}{{"liveness", daemonLivePath, c.LivenessProbe}, {"readiness", daemonReadyPath, c.ReadinessProbe}} {
		require.NotNil(t, pr.p, "%s: %s probe", where, pr.name)
		require.NotNil(t, pr.p.HTTPGet, "%s: %s probe is an HTTP GET", where, pr.name)
		require.Equal(t, pr.path, pr.p.HTTPGet.Path, "%s: %s probe", where, pr.name)
		require.Equal(t, listenPort, resolve(pr.p.HTTPGet.Port), "%s: %s probe port", where, pr.name)
	}
	a := tmpl.Metadata.Annotations
	require.Equal(t, "true", a["prometheus.io/scrape"])
	require.Equal(t, listenPort, a["prometheus.io/port"])
	require.Equal(t, daemonMetricsPath, a["prometheus.io/path"])
}

// The paths `reaper run` serves on http.listen.
const (
	daemonLivePath    = "/healthz"
	daemonReadyPath   = "/readyz"
	daemonMetricsPath = "/metrics"
)

func TestKustomizeRenders(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not installed")
	}
	for _, c := range []struct{ dir, kind string }{
		{k8sDir, "Deployment"},
		{filepath.Join(k8sDir, "cronjob"), "CronJob"},
	} {
		t.Run(c.dir, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), "kubectl", "kustomize", c.dir)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Run(), "kubectl kustomize %s:\n%s", c.dir, &stderr)
			objs := decodeObjects(t, c.dir, &stdout)
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.Kind)
				if o.Kind != "Namespace" {
					require.Equal(t, "tipreaper", o.Metadata.Namespace, "%s %s", o.Kind, o.Metadata.Name)
				}
			}
			require.ElementsMatch(t, []string{"Namespace", "ConfigMap", c.kind}, kinds, "the Secret is created by hand, never applied from the repo")
		})
	}
}
