package testkit

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/haadm/haadm/certs"
)

// caValidity is kubeadm's for the CAs it makes.
const caValidity = 10 * 365 * 24 * time.Hour

// NewCA makes a self-signed CA the way kubeadm does (RSA-2048, valid ten
// years from now, backdated like its leaves, the CN also a DNS SAN), and
// returns it PEM-encoded too, as ca.crt and ca.key hold it.
func NewCA(cn string) (certPEM, keyPEM []byte, ca *certs.CA, err error) {
	key, err := certs.NewKey(certs.RSA2048)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              []string{cn},
		NotBefore:             now.Add(-certs.Backdate).UTC(),
		NotAfter:              now.Add(caValidity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	if keyPEM, err = certs.EncodeKeyPEM(key); err != nil {
		return nil, nil, nil, err
	}
	return certs.EncodeCertPEM(cert), keyPEM, &certs.CA{Cert: cert, Key: key}, nil
}

// KubeadmCA is the cluster CA real kubeadm made (KubeadmPKI's ca.crt and
// ca.key): certificates it signs chain to what kubeadm would have written.
func KubeadmCA(t testing.TB) *certs.CA {
	t.Helper()
	ca, err := certs.LoadCA(Testdata(t, KubeadmPKI+"/ca.crt"), Testdata(t, KubeadmPKI+"/ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// IssueLeaf signs spec with ca for a fresh RSA-2048 key the way kubeadm's
// certs phase does: valid from notBefore (backdated five minutes) for a
// year.
func IssueLeaf(ca *certs.CA, spec certs.Spec, notBefore time.Time) (crtPEM, keyPEM []byte, err error) {
	key, err := certs.NewKey(certs.RSA2048)
	if err != nil {
		return nil, nil, err
	}
	nb, validity := certs.KubeadmWindow(notBefore, certs.DefaultValidity)
	if crtPEM, err = certs.Issue(ca, spec, key, nb, validity); err != nil {
		return nil, nil, err
	}
	keyPEM, err = certs.EncodeKeyPEM(key)
	return crtPEM, keyPEM, err
}

// ServingCert is a certificate for spec signed by ca, valid for the year
// that ends at notAfter (tests pin the expiry a report shows), ready for a
// tls.Config. Its key is ECDSA P-256: quick to make, and nothing that
// probes a server looks at the key's algorithm.
func ServingCert(t testing.TB, ca *certs.CA, spec certs.Spec, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := certs.NewKey(certs.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := notAfter.Add(-certs.DefaultValidity)
	certPEM, err := certs.Issue(ca, spec, key, notBefore, certs.DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := certs.EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}
