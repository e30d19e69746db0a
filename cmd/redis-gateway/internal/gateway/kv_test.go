package gateway_test

// The Secret store (package kv) on the real API server: compare-and-swap under
// concurrent writers, a writer that comes in between a read and a write, and Secrets
// that are not the store's.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/kv"
)

const pullKeyOf12 = "github.com::acme/infra::12"

// TestKVConcurrentWriters: eight writers of one key all succeed (each retries on a
// conflict) and the key ends with one of their values.
func TestKVConcurrentWriters(t *testing.T) {
	ns := newNamespace(t)
	store := kv.New(env.Client, ns)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = store.Set(ctx, pullKeyOf12, fmt.Appendf(nil, "writer %d", i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	v, found, err := store.Get(ctx, pullKeyOf12)
	if err != nil || !found || !strings.HasPrefix(string(v), "writer ") {
		t.Errorf("Get = %q, %v, %v", v, found, err)
	}
}

// TestKVWriterInBetween: another writer changes the Secret between the store's read
// and its write or delete; the store's compare-and-swap fails, it reads again, and
// its own write wins (Set) or the delete goes through (Del), never acting on a
// value it did not read.
func TestKVWriterInBetween(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := kv.New(env.Client, ns).Set(ctx, pullKeyOf12, []byte("first")); err != nil {
		t.Fatal(err)
	}
	interfere := func(ctx context.Context, obj client.Object) {
		t.Helper()
		var sec corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), &sec); err != nil {
			t.Fatal(err)
		}
		sec.Data[kv.ValueField] = []byte("someone else's")
		if err := env.Client.Update(ctx, &sec); err != nil {
			t.Fatal(err)
		}
	}
	var updates, deletes int
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	c := interceptor.NewClient(wc, interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if updates++; updates == 1 {
				interfere(ctx, obj)
			}
			return c.Update(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if deletes++; deletes == 1 {
				interfere(ctx, obj)
			}
			return c.Delete(ctx, obj, opts...)
		},
	})
	store := kv.New(c, ns)
	if err := store.Set(ctx, pullKeyOf12, []byte("second")); err != nil {
		t.Fatalf("Set with a writer in between: %v", err)
	}
	if updates != 2 {
		t.Errorf("Set made %d updates, want 2 (one refused by the compare-and-swap, one after reading again)", updates)
	}
	if v, _, err := store.Get(ctx, pullKeyOf12); err != nil || string(v) != "second" {
		t.Errorf("after Set: %q, %v; want second", v, err)
	}
	deleted, err := store.Del(ctx, pullKeyOf12)
	if err != nil || !deleted {
		t.Fatalf("Del with a writer in between: %v, %v", deleted, err)
	}
	if deletes != 2 {
		t.Errorf("Del made %d deletes, want 2 (one refused by its preconditions, one after reading again)", deletes)
	}
	if _, found, err := store.Get(ctx, pullKeyOf12); err != nil || found {
		t.Errorf("after Del: found %v, %v", found, err)
	}
}

// TestKVSecretsNotTheStores: a Secret under a key's name that holds another key is an
// error, never read as that key's; labelled Secrets without the store's type or key
// annotation are not keys; a value too big for a Secret is refused.
func TestKVSecretsNotTheStores(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	store := kv.New(env.Client, ns)
	for _, sec := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: kv.SecretName(pullKeyOf12), Namespace: ns, Labels: map[string]string{kv.ManagedByLabel: kv.ManagedByValue},
			Annotations: map[string]string{kv.KeyAnnotation: "github.com::acme/other::1"}}, Type: kv.SecretType, Data: map[string][]byte{kv.ValueField: []byte("x")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "labelled-opaque", Namespace: ns, Labels: map[string]string{kv.ManagedByLabel: kv.ManagedByValue},
			Annotations: map[string]string{kv.KeyAnnotation: "github.com::acme/infra::3"}}, Data: map[string][]byte{kv.ValueField: []byte("x")}},
	} {
		if err := env.Client.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	want := "holds key \"github.com::acme/other::1\" (annotation locking.runatlantis.io/redis-key), not \"github.com::acme/infra::12\""
	for what, err := range map[string]error{
		"Get": func() error { _, _, err := store.Get(ctx, pullKeyOf12); return err }(),
		"Set": store.Set(ctx, pullKeyOf12, []byte("v")),
		"Del": func() error { _, err := store.Del(ctx, pullKeyOf12); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s of a key whose Secret name holds another key: %v, want an error containing %q", what, err, want)
		}
	}
	if keys, err := store.Keys(ctx); err != nil || !slices.Equal(keys, []string{}) {
		t.Errorf("Keys = %q, %v; want none (neither Secret is the store's)", keys, err)
	}
	if err := store.Set(ctx, "github.com::acme/infra::4", make([]byte, kv.MaxValueBytes+1)); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("Set of a value over %d bytes: %v", kv.MaxValueBytes, err)
	}
}
