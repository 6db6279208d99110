// lab-image turns a staged root filesystem into an OCI image tarball that
// `ctr images import` accepts. There is no registry on the lab's network, so
// every image kubeadm asks for is built here from the binaries the lab compiled.
//
//	lab-image -rootfs DIR -tag registry.k8s.io/kube-apiserver:v1.36.3 -out x.tar [-entrypoint /pause]
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	rootfs := flag.String("rootfs", "", "directory whose content becomes the image's only layer")
	tag := flag.String("tag", "", "image reference, e.g. registry.k8s.io/pause:3.10.2")
	out := flag.String("out", "", "output tarball")
	entry := flag.String("entrypoint", "", "optional entrypoint")
	flag.Parse()
	if *rootfs == "" || *tag == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(*rootfs, *tag, *out, *entry); err != nil {
		fmt.Fprintf(os.Stderr, "lab-image %s: %v\n", *tag, err)
		os.Exit(1)
	}
}

func build(rootfs, tag, out, entry string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	layerTar, err := tarDir(rootfs)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	cfg := v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	if entry != "" {
		cfg.Entrypoint = []string{entry}
	}
	// Config first, layer second: AppendLayers records the layer's diff id
	// in the config, which containerd checks on import.
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: cfg, RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// tarDir keeps symlinks as symlinks (iptables is a family of links to
// xtables-nft-multi) and file modes as they are.
func tarDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
