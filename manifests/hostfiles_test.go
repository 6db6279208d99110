package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// production adds to the captured kube-apiserver.yaml what an operator
// adds for Secrets encrypted at rest (the Kubernetes guide's way: a
// DirectoryOrCreate volume at /etc/kubernetes/enc), an audit policy and
// log, an OIDC CA in the PKI directory and in the OS bundle directory, and
// an admission configuration, the way kubeadm renders extraArgs and
// extraVolumes.
func production(t *testing.T) []byte {
	t.Helper()
	pod, err := Decode(readSource(t, "kube-apiserver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := &pod.Spec.Containers[0]
	c.Command = append(c.Command,
		"--encryption-provider-config=/etc/kubernetes/enc/enc.yaml",
		"--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
		"--audit-log-path=/var/log/kubernetes/audit/audit.log",
		"--oidc-ca-file=/etc/kubernetes/pki/oidc-ca.crt",
		"--admission-control-config-file=/etc/kubernetes/admission/config.yaml",
		"--tls-cipher-suites=TLS_AES_128_GCM_SHA256",
	)
	file, dirOrCreate, dir := corev1.HostPathFile, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory
	add := func(name, host, in string, typ *corev1.HostPathType, ro bool) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: typ}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: in, ReadOnly: ro})
	}
	add("enc", "/etc/kubernetes/enc", "/etc/kubernetes/enc", &dirOrCreate, true)
	add("audit", "/etc/kubernetes/audit-policy.yaml", "/etc/kubernetes/audit-policy.yaml", &file, true)
	add("audit-log", "/var/log/kubernetes/audit/", "/var/log/kubernetes/audit/", &dirOrCreate, false)
	add("admission", "/srv/admission", "/etc/kubernetes/admission", &dir, true)
	add("plugins", "/opt/webhooks", "/opt/webhooks", &dir, true)
	out, err := Encode(pod)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHostPathsProduction(t *testing.T) {
	t.Parallel()
	got, err := HostPaths(production(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]HostPathKind{
		"/etc/kubernetes/enc/enc.yaml":      CopyFile,  // named by --encryption-provider-config
		"/etc/kubernetes/enc":               CreateDir, // its directory, DirectoryOrCreate
		"/etc/kubernetes/audit-policy.yaml": CopyFile,
		"/var/log/kubernetes/audit":         CreateDir, // output: made, never copied
		"/etc/kubernetes/pki/oidc-ca.crt":   CopyFile,  // in the PKI dir, but not kubeadm's
		"/srv/admission/config.yaml":        CopyFile,  // mounted elsewhere in the container
		"/srv/admission":                    CreateDir,
		"/opt/webhooks":                     CopyDir, // a Directory no flag names a file in
	}
	seen := map[string]bool{}
	for _, h := range got {
		seen[h.Path] = true
		k, ok := want[h.Path]
		if !ok {
			t.Errorf("unexpected %s %s (%s)", h.Kind, h.Path, h.Why)
			continue
		}
		if h.Kind != k {
			t.Errorf("%s: %s, want %s", h.Path, h.Kind, k)
		}
		if h.Component != "kube-apiserver" {
			t.Errorf("%s: component %q", h.Path, h.Component)
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("missing %s %s", want[p], p)
		}
	}
}

// TestHostPathsPlain: kubeadm's own manifests need nothing beyond what
// kubeadm and haadm's other phases put on every master.
func TestHostPathsPlain(t *testing.T) {
	t.Parallel()
	for _, f := range files {
		got, err := HostPaths(readSource(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("%s: %+v", f, got)
		}
	}
}

func TestHostPathsRefusesDevices(t *testing.T) {
	t.Parallel()
	pod, err := Decode(readSource(t, "kube-scheduler.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sock := corev1.HostPathSocket
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kms", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/kms.sock", Type: &sock}}})
	pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "kms", MountPath: "/run/kms.sock"})
	src, _ := Encode(pod)
	_, err = HostPaths(src)
	if err == nil || !strings.Contains(err.Error(), "/run/kms.sock") || !strings.Contains(err.Error(), "every new master") {
		t.Fatalf("err = %v", err)
	}
}

func TestHostPathsOSBundleAndFileOrCreate(t *testing.T) {
	t.Parallel()
	pod, err := Decode(readSource(t, "kube-apiserver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	foc := corev1.HostPathFileOrCreate
	c := &pod.Spec.Containers[0]
	c.Command = append(c.Command, "--oidc-ca-file=/etc/ssl/certs/corp-oidc.pem", "--authentication-config=/etc/kubernetes/authn.yaml")
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "authn", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc/kubernetes/authn.yaml", Type: &foc}}})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "authn", MountPath: "/etc/kubernetes/authn.yaml"})
	src, _ := Encode(pod)
	got, err := HostPaths(src)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]HostPath{}
	for _, h := range got {
		byPath[h.Path] = h
	}
	if h := byPath["/etc/ssl/certs/corp-oidc.pem"]; h.Kind != CopyFile || !h.IfMissing {
		t.Errorf("OS bundle file: %+v, want a copy only where missing", h)
	}
	if h := byPath["/etc/kubernetes/authn.yaml"]; h.Kind != CopyFile || h.Optional {
		t.Errorf("authn config named by a flag: %+v, want a required copy", h)
	}
	if len(got) != 2 {
		t.Errorf("got %+v", got)
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	cfg := []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ImagePolicyWebhook
  path: /etc/kubernetes/admission/imagepolicy.yaml
- name: EventRateLimit
  configuration:
    kubeConfigFile: "/etc/kubernetes/admission/webhook.kubeconfig"
    caFile: /etc/kubernetes/pki/ca.crt
    elsewhere: /usr/lib/not-mounted.yaml
`)
	got, err := References(production(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, h := range got {
		if !h.Optional || h.Kind != CopyFile {
			t.Errorf("%+v: want an optional copy", h)
		}
		paths = append(paths, h.Path)
	}
	want := "/srv/admission/imagepolicy.yaml,/srv/admission/webhook.kubeconfig"
	if strings.Join(paths, ",") != want {
		t.Errorf("references = %v, want %s (kubeadm's CA and unmounted paths left out)", paths, want)
	}
}

// TestHostPathsCapturedProduction reads the manifests kubeadm v1.36.3 wrote
// for the lab's production profile (extraArgs and extraVolumes at init).
func TestHostPathsCapturedProduction(t *testing.T) {
	t.Parallel()
	want := map[string]map[string]HostPathKind{
		"kube-apiserver.yaml": {
			"/etc/kubernetes/enc/enc.yaml":      CopyFile,
			"/etc/kubernetes/enc":               CreateDir,
			"/etc/kubernetes/audit/policy.yaml": CopyFile,
			"/var/log/kubernetes/audit":         CreateDir,
		},
		"kube-scheduler.yaml":          {"/etc/kubernetes/scheduler-config.yaml": CopyFile},
		"kube-controller-manager.yaml": {},
		"etcd.yaml":                    {},
	}
	for f, w := range want {
		src, err := os.ReadFile(filepath.Join("..", "testdata", "v1.36-production", "shaolin", "etc", "kubernetes", "manifests", f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := HostPaths(src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		have := map[string]HostPathKind{}
		for _, h := range got {
			have[h.Path] = h.Kind
		}
		if fmt.Sprint(have) != fmt.Sprint(w) {
			t.Errorf("%s: %v, want %v", f, have, w)
		}
	}
}
