// Package kubeadmcfg reads and edits kubeadm's ClusterConfiguration (the
// kube-system/kubeadm-config ConfigMap) with kubeadm's own API types, in the
// API version it was stored in (v1beta3 or v1beta4). Nothing is defaulted or
// converted on the way, so every field haadm does not change is written back
// as it was: the next `kubeadm upgrade` must find what an operator set.
package kubeadmcfg

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta3"
	"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
)

// ConfigMapKey is the key of kubeadm-config that holds the ClusterConfiguration.
const ConfigMapKey = "ClusterConfiguration"

// Facts are the values haadm needs, with kubeadm's defaults filled in where
// the stored configuration leaves them empty.
type Facts struct {
	APIVersion           string
	KubernetesVersion    string
	ClusterName          string
	ControlPlaneEndpoint string
	CertSANs             []string
	ServiceSubnet        string
	PodSubnet            string
	DNSDomain            string
	ImageRepository      string
	ExternalEtcd         bool
	// EtcdServerCertSANs and EtcdPeerCertSANs are etcd.local's extra SANs.
	EtcdServerCertSANs []string
	EtcdPeerCertSANs   []string
	// CertificateValidity is certificateValidityPeriod (v1beta4), zero for
	// kubeadm's default of one year.
	CertificateValidity time.Duration
}

// Config is a decoded ClusterConfiguration of either supported version.
type Config struct {
	obj runtime.Object
}

func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1beta3.AddToScheme, v1beta4.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Parse decodes a ClusterConfiguration document.
func Parse(data []byte) (*Config, error) {
	s, err := newScheme()
	if err != nil {
		return nil, err
	}
	// The universal deserializer decodes into the stored version without
	// conversion or defaulting: exactly what is there, nothing more.
	obj, gvk, err := serializer.NewCodecFactory(s).UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode ClusterConfiguration: %w", err)
	}
	switch obj.(type) {
	case *v1beta3.ClusterConfiguration, *v1beta4.ClusterConfiguration:
		// A field these types do not know would be dropped on the way back:
		// refuse rather than lose an operator's setting.
		strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Yaml: true, Strict: true})
		if _, _, err := strict.Decode(data, nil, nil); err != nil {
			return nil, fmt.Errorf("kubeadm-config holds something haadm's kubeadm types do not know, and rewriting it would drop it: %w", err)
		}
		return &Config{obj: obj}, nil
	}
	return nil, fmt.Errorf("kubeadm-config holds %s, want a ClusterConfiguration of kubeadm.k8s.io/v1beta3 or v1beta4", gvk)
}

// Facts returns the configuration's values with kubeadm's defaults applied.
func (c *Config) Facts() Facts {
	var f Facts
	switch o := c.obj.(type) {
	case *v1beta3.ClusterConfiguration:
		f = Facts{APIVersion: v1beta3.SchemeGroupVersion.String(), KubernetesVersion: o.KubernetesVersion, ClusterName: o.ClusterName,
			ControlPlaneEndpoint: o.ControlPlaneEndpoint, CertSANs: slices.Clone(o.APIServer.CertSANs),
			ServiceSubnet: o.Networking.ServiceSubnet, PodSubnet: o.Networking.PodSubnet, DNSDomain: o.Networking.DNSDomain,
			ImageRepository: o.ImageRepository, ExternalEtcd: o.Etcd.External != nil}
		if o.Etcd.Local != nil {
			f.EtcdServerCertSANs, f.EtcdPeerCertSANs = slices.Clone(o.Etcd.Local.ServerCertSANs), slices.Clone(o.Etcd.Local.PeerCertSANs)
		}
	case *v1beta4.ClusterConfiguration:
		f = Facts{APIVersion: v1beta4.SchemeGroupVersion.String(), KubernetesVersion: o.KubernetesVersion, ClusterName: o.ClusterName,
			ControlPlaneEndpoint: o.ControlPlaneEndpoint, CertSANs: slices.Clone(o.APIServer.CertSANs),
			ServiceSubnet: o.Networking.ServiceSubnet, PodSubnet: o.Networking.PodSubnet, DNSDomain: o.Networking.DNSDomain,
			ImageRepository: o.ImageRepository, ExternalEtcd: o.Etcd.External != nil}
		if o.Etcd.Local != nil {
			f.EtcdServerCertSANs, f.EtcdPeerCertSANs = slices.Clone(o.Etcd.Local.ServerCertSANs), slices.Clone(o.Etcd.Local.PeerCertSANs)
		}
		if o.CertificateValidityPeriod != nil {
			f.CertificateValidity = o.CertificateValidityPeriod.Duration
		}
	}
	if f.ClusterName == "" {
		f.ClusterName = "kubernetes"
	}
	if f.ServiceSubnet == "" {
		f.ServiceSubnet = "10.96.0.0/12"
	}
	if f.DNSDomain == "" {
		f.DNSDomain = "cluster.local"
	}
	return f
}

// SetEndpoint sets controlPlaneEndpoint and adds sans to apiServer.certSANs
// (keeping the ones there, in order, without duplicates). It reports whether
// anything changed.
func (c *Config) SetEndpoint(endpoint string, sans []string) bool {
	merge := func(have []string) ([]string, bool) {
		changed := false
		for _, s := range sans {
			if s != "" && !slices.Contains(have, s) {
				have = append(have, s)
				changed = true
			}
		}
		return have, changed
	}
	var changed bool
	switch o := c.obj.(type) {
	case *v1beta3.ClusterConfiguration:
		o.APIServer.CertSANs, changed = merge(o.APIServer.CertSANs)
		if o.ControlPlaneEndpoint != endpoint {
			o.ControlPlaneEndpoint, changed = endpoint, true
		}
	case *v1beta4.ClusterConfiguration:
		o.APIServer.CertSANs, changed = merge(o.APIServer.CertSANs)
		if o.ControlPlaneEndpoint != endpoint {
			o.ControlPlaneEndpoint, changed = endpoint, true
		}
	}
	return changed
}

// Marshal encodes the configuration as YAML in its original API version.
func (c *Config) Marshal() ([]byte, error) {
	s, err := newScheme()
	if err != nil {
		return nil, err
	}
	gv := v1beta4.SchemeGroupVersion
	if _, ok := c.obj.(*v1beta3.ClusterConfiguration); ok {
		gv = v1beta3.SchemeGroupVersion
	}
	c.obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: "ClusterConfiguration"})
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Yaml: true})
	var buf bytes.Buffer
	if err := ser.Encode(c.obj, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
