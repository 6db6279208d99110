package manifests

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Decode parses a static-pod manifest. It is strict: a field that
// k8s.io/api's Pod does not know would be silently dropped by Encode, so it
// is an error instead.
func Decode(src []byte) (*corev1.Pod, error) {
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(src, &pod); err != nil {
		return nil, fmt.Errorf("decode static pod manifest: %w", err)
	}
	if pod.APIVersion != "v1" || pod.Kind != "Pod" {
		return nil, fmt.Errorf("decode static pod manifest: apiVersion %q kind %q, want v1 Pod", pod.APIVersion, pod.Kind)
	}
	if len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("decode static pod manifest %q: no container", pod.Name)
	}
	return &pod, nil
}

// Encode marshals pod the way kubeadm does (JSON field names, sorted keys,
// status: {}), so an untouched pod round-trips to the same bytes.
func Encode(pod *corev1.Pod) ([]byte, error) {
	out, err := yaml.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("encode static pod manifest %q: %w", pod.Name, err)
	}
	return out, nil
}

// decodeComponent decodes src and checks that it is the manifest of the
// expected component, so that swapped files fail instead of being rewritten.
func decodeComponent(src []byte, component string) (*corev1.Pod, error) {
	pod, err := Decode(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", component, err)
	}
	if got := pod.Spec.Containers[0].Name; got != component {
		return nil, fmt.Errorf("%s: manifest is for %q (container name), not %s", component, got, component)
	}
	return pod, nil
}
