package manifests

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

type podT = corev1.Pod

func podWith(cmd ...string) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Command: cmd}}}}
}

// mutate decodes src, applies f and encodes it again, to derive variants of
// the captured manifests.
func mutate(t *testing.T, src []byte, f func(*podT)) []byte {
	t.Helper()
	pod, err := Decode(src)
	if err != nil {
		t.Fatal(err)
	}
	f(pod)
	out, err := Encode(pod)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFlag(t *testing.T) {
	p := podWith("etcd", "--name=a", "--flag", "--name-suffix=x", "--empty=", "--eq=a=b")
	for name, want := range map[string]struct {
		v  string
		ok bool
	}{
		"name": {"a", true}, "--name": {"a", true}, "flag": {"", true}, "empty": {"", true},
		"eq": {"a=b", true}, "missing": {"", false}, "nam": {"", false}, "etcd": {"", false},
	} {
		v, ok := Flag(p, name)
		if v != want.v || ok != want.ok {
			t.Errorf("Flag(%q) = %q, %v; want %q, %v", name, v, ok, want.v, want.ok)
		}
	}
	if _, ok := Flag(&corev1.Pod{}, "x"); ok {
		t.Error("Flag on a pod without containers")
	}
}

func TestSetFlag(t *testing.T) {
	cases := []struct {
		name  string
		in    []string
		flag  string
		value string
		want  []string
	}{
		{"replace in place", []string{"x", "--a=1", "--b=2", "--c=3"}, "b", "9", []string{"x", "--a=1", "--b=9", "--c=3"}},
		{"append missing", []string{"x", "--a=1"}, "z", "9", []string{"x", "--a=1", "--z=9"}},
		{"bare flag", []string{"x", "--b", "--c=3"}, "--b", "true", []string{"x", "--b=true", "--c=3"}},
		{"drop later duplicates", []string{"x", "--b=1", "--c=3", "--b=2"}, "b", "9", []string{"x", "--b=9", "--c=3"}},
		{"prefix is another flag", []string{"x", "--name-x=1"}, "name", "n", []string{"x", "--name-x=1", "--name=n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]string(nil), tc.in...)
			p := podWith(in...)
			SetFlag(p, tc.flag, tc.value)
			if got := p.Spec.Containers[0].Command; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.in) {
				t.Errorf("SetFlag modified the caller's backing array: %q", in)
			}
		})
	}
	SetFlag(&corev1.Pod{}, "a", "b") // must not panic
}

func TestDiff(t *testing.T) {
	if d := Diff([]byte("a\n"), []byte("a\n")); d != "" {
		t.Errorf("equal inputs: %q", d)
	}
	want := "--- old\n+++ new\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
	if d := Diff([]byte("a\nb\n"), []byte("a\nc\n")); d != want {
		t.Errorf("Diff = %q, want %q", d, want)
	}
}

func TestDiffNoFinalNewline(t *testing.T) {
	want := "--- old\n+++ new\n@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file\n"
	if d := Diff([]byte("a\nb\n"), []byte("a\nb")); d != want {
		t.Errorf("Diff = %q, want %q", d, want)
	}
}
