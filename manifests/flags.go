package manifests

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Flag returns the value of --name in the first container's command. A bare
// --name (no "=") is reported as present with an empty value.
func Flag(pod *corev1.Pod, name string) (string, bool) {
	if len(pod.Spec.Containers) == 0 {
		return "", false
	}
	for _, arg := range pod.Spec.Containers[0].Command {
		if v, ok := flagValue(arg, name); ok {
			return v, true
		}
	}
	return "", false
}

// SetFlag sets --name=value in the first container's command: in place of
// the first occurrence, or appended at the end. Later occurrences are
// removed, because the component's flag parser lets the last one win and a
// leftover would silently override the new value. A pod without containers
// (which Decode never returns) is left alone.
func SetFlag(pod *corev1.Pod, name, value string) {
	if len(pod.Spec.Containers) == 0 {
		return
	}
	c := &pod.Spec.Containers[0]
	name = strings.TrimPrefix(name, "--")
	entry := "--" + name + "=" + value
	out := make([]string, 0, len(c.Command)+1)
	found := false
	for _, arg := range c.Command {
		if _, ok := flagValue(arg, name); !ok {
			out = append(out, arg)
			continue
		}
		if !found {
			out = append(out, entry)
			found = true
		}
	}
	if !found {
		out = append(out, entry)
	}
	c.Command = out
}

func flagValue(arg, name string) (string, bool) {
	name = "--" + strings.TrimPrefix(name, "--")
	if arg == name {
		return "", true
	}
	if v, ok := strings.CutPrefix(arg, name+"="); ok {
		return v, true
	}
	return "", false
}
