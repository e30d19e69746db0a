package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestConfigNamesTheFlag(t *testing.T) {
	files := map[string]string{
		serviceAccountNamespaceFile: "atlantis\n",
		"/pw":                       "s3cret\n",
		"/empty":                    "\n",
		"/bad.pem":                  "not a certificate",
	}
	readFile := func(name string) ([]byte, error) {
		if v, ok := files[name]; ok {
			return []byte(v), nil
		}
		return nil, os.ErrNotExist
	}
	base := func() flags {
		return flags{listen: "127.0.0.1:6379", httpAddr: ":9121", username: "default", commandTimeout: 10 * time.Second, shutdownGrace: 10 * time.Second}
	}
	for _, tc := range []struct {
		name   string
		change func(*flags)
		env    string
		want   string // "" = no error
	}{
		{name: "defaults: the pod's namespace, loopback, no password"},
		{name: "bad namespace", change: func(f *flags) { f.namespace = "Not_A_Namespace" }, want: `--namespace "Not_A_Namespace" is not a namespace name`},
		{name: "bad store namespace", change: func(f *flags) { f.storeNamespace = "-x" }, want: `--store-namespace "-x" is not a namespace name`},
		{name: "beyond loopback without a password", change: func(f *flags) { f.listen = ":6379" }, want: "--listen :6379 serves beyond loopback without a password"},
		{name: "beyond loopback with a password file", change: func(f *flags) { f.listen = ":6379"; f.passwordFile = "/pw" }},
		{name: "beyond loopback with the password in the environment", change: func(f *flags) { f.listen = "0.0.0.0:6379" }, env: "s3cret"},
		{name: "beyond loopback, allowed", change: func(f *flags) { f.listen = ":6379"; f.allowUnauthenticatedNonLoopback = true }},
		{name: "missing password file", change: func(f *flags) { f.passwordFile = "/nope" }, want: "--password-file: file does not exist"},
		{name: "empty password file", change: func(f *flags) { f.passwordFile = "/empty" }, want: "--password-file /empty is empty"},
		{name: "bad listen", change: func(f *flags) { f.listen = "6379" }, want: `--listen "6379"`},
		{name: "bad http address", change: func(f *flags) { f.httpAddr = "nine" }, want: `--http-address "nine"`},
		{name: "negative db", change: func(f *flags) { f.db = -1 }, want: "--redis-db -1 is negative"},
		{name: "zero timeout", change: func(f *flags) { f.commandTimeout = 0 }, want: "--command-timeout 0s is not positive"},
		{name: "negative grace", change: func(f *flags) { f.shutdownGrace = -time.Second }, want: "--shutdown-grace -1s is negative"},
		{name: "empty username", change: func(f *flags) { f.username = "" }, want: "--username is empty"},
		{name: "cert without key", change: func(f *flags) { f.tlsCert = "/bad.pem" }, want: "--tls-cert-file and --tls-key-file go together"},
		{name: "bad certificate", change: func(f *flags) { f.tlsCert, f.tlsKey = "/bad.pem", "/bad.pem" }, want: "--tls-cert-file /bad.pem and --tls-key-file /bad.pem"},
		{name: "missing certificate", change: func(f *flags) { f.tlsCert, f.tlsKey = "/nope", "/bad.pem" }, want: "--tls-cert-file: file does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := base()
			if tc.change != nil {
				tc.change(&f)
			}
			cfg, err := f.config(readFile, func(string) string { return tc.env })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("config: %v", err)
				}
				if cfg.Namespace != "atlantis" && f.namespace == "" {
					t.Errorf("namespace %q, want the pod's", cfg.Namespace)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("config: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("no namespace anywhere", func(t *testing.T) {
		f := base()
		_, err := f.config(func(string) ([]byte, error) { return nil, errors.New("no such file") }, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "--namespace is empty and the pod's namespace is unknown") {
			t.Errorf("config: %v", err)
		}
	})
}
