package testkit

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// APIServer answers GET /readyz and /version the way kube-apiserver does
// for an anonymous client. The zero value is a ready apiserver without
// /version; it is safe for concurrent use.
type APIServer struct {
	// Version is the gitVersion /version reports; "" answers 404.
	Version string

	mu     sync.Mutex
	readyz int
}

// ReadyzFailure is what /readyz answers with a failing check: the verbose
// list kube-apiserver sends with its 500.
const ReadyzFailure = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed\n"

// SetReadyz sets the status /readyz answers: 200 ok, 401 and 403 the
// Status object of a refused anonymous request, anything else
// ReadyzFailure.
func (a *APIServer) SetReadyz(code int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.readyz = code
}

// SetReady is SetReadyz(200) or SetReadyz(500).
func (a *APIServer) SetReady(ready bool) {
	if ready {
		a.SetReadyz(http.StatusOK)
	} else {
		a.SetReadyz(http.StatusInternalServerError)
	}
}

func (a *APIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	code := a.readyz
	a.mu.Unlock()
	switch {
	case r.URL.Path == "/readyz":
		switch code {
		case 0, http.StatusOK:
			io.WriteString(w, "ok")
		case http.StatusUnauthorized, http.StatusForbidden:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]any{
				"kind": "Status", "apiVersion": "v1", "status": "Failure",
				"message": http.StatusText(code), "reason": http.StatusText(code), "code": code,
			})
		default:
			w.WriteHeader(code)
			io.WriteString(w, ReadyzFailure)
		}
	case r.URL.Path == "/version" && a.Version != "":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"gitVersion": a.Version})
	default:
		http.NotFound(w, r)
	}
}
