// Package kv keeps the gateway's plain keys (every key Atlantis stores that is not
// a lock: the pull request statuses "<vcs host>::<repository>::<pull number>") in
// Kubernetes Secrets, one per key, so that Atlantis needs neither Redis nor a
// volume.
//
// Why Secrets: a pull status is Atlantis's models.PullStatus JSON, whose pull
// request carries BaseRepo.CloneURL, the HTTPS clone URL with the VCS token in it
// ("https://user:token@github.com/..."). Atlantis reads the value back byte for
// byte, so the gateway cannot strip it (as pkg/atlantis strips it from lock
// annotations). Secrets are what RBAC policies, audit policies and encryption at
// rest treat as confidential; a ConfigMap would hand the token to everyone who may
// read ConfigMaps. Both kinds hold up to 1 MiB and both give compare-and-swap
// through resourceVersion.
//
// Every write is a compare-and-swap: Set reads the Secret and updates it with the
// resourceVersion it read (or creates it), and starts over on a conflict; it
// returns only once the API server has stored the write, so a reply "OK" is
// durable. Reads go to the API server, never to a cache, so that a restarted
// gateway or a second replica reads what the first wrote.
package kv

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// What the store writes on its Secrets.
const (
	// SecretType is the type of the store's Secrets, so that `kubectl get secrets
	// --field-selector type=...` finds them and nothing else is mistaken for one.
	SecretType corev1.SecretType = "locking.runatlantis.io/redis-value"
	// KeyAnnotation holds the Redis key of a Secret: its name is only a slug and a
	// hash of the key.
	KeyAnnotation = "locking.runatlantis.io/redis-key"
	// ManagedByLabel and ManagedByValue mark the store's Secrets; Keys lists by them.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "atlantis-redis-gateway"
	// ValueField is the data field of the value.
	ValueField = "value"
	// namePrefix starts every Secret's name.
	namePrefix = "redis-"
	// MaxValueBytes is the largest value the store takes: a Secret holds at most
	// 1 MiB, and its metadata needs some of it.
	MaxValueBytes = 1<<20 - 16<<10
	// maxRounds bounds the read-write rounds of one Set when other writers keep
	// changing the Secret in between.
	maxRounds = 8
)

// Store keeps keys in the Secrets of one namespace.
type Store struct {
	c         client.Client
	namespace string
}

// New returns a store in namespace, through c, which must not be a cached client.
func New(c client.Client, namespace string) *Store {
	return &Store{c: c, namespace: namespace}
}

// Namespace is the namespace of the store's Secrets.
func (s *Store) Namespace() string { return s.namespace }

// SecretName returns the name of the Secret of key: a readable slug of the key and
// a hash of all of it, so that different keys never share a Secret.
func SecretName(key string) string { return namePrefix + lockkey.NameOf(key, "key") }

// Get returns the value of key, or found=false when it has none.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	sec, err := s.read(ctx, key)
	if err != nil || sec == nil {
		return nil, false, err
	}
	if v, ok := sec.Data[ValueField]; ok {
		return v, true, nil
	}
	return nil, false, fmt.Errorf("secret %s/%s of key %q has no data field %q", s.namespace, sec.Name, key, ValueField)
}

// read returns the Secret of key, or nil when there is none. A Secret of the name
// that holds another key (which only a hand-made Secret could) is an error, never
// taken for this key's.
func (s *Store) read(ctx context.Context, key string) (*corev1.Secret, error) {
	var sec corev1.Secret
	name := SecretName(key)
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading secret %s/%s of key %q: %w", s.namespace, name, key, err)
	}
	if got := sec.Annotations[KeyAnnotation]; got != key {
		return nil, fmt.Errorf("secret %s/%s holds key %q (annotation %s), not %q; delete or rename it", s.namespace, name, got, KeyAnnotation, key)
	}
	return &sec, nil
}

// Set stores value at key: it creates the key's Secret, or updates it with the
// resourceVersion it read, and starts over when another writer came in between.
func (s *Store) Set(ctx context.Context, key string, value []byte) error {
	if len(value) > MaxValueBytes {
		return fmt.Errorf("value of key %q has %d bytes, more than the %d a Secret can hold", key, len(value), MaxValueBytes)
	}
	for range maxRounds {
		sec, err := s.read(ctx, key)
		if err != nil {
			return err
		}
		if sec == nil {
			sec = s.object(key)
			setValue(sec, value)
			err = s.c.Create(ctx, sec, client.FieldOwner(ManagedByValue))
			if apierrors.IsAlreadyExists(err) {
				continue
			}
		} else {
			setValue(sec, value)
			err = s.c.Update(ctx, sec, client.FieldOwner(ManagedByValue))
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("writing secret %s/%s of key %q: %w", s.namespace, sec.Name, key, err)
		}
		return nil
	}
	return fmt.Errorf("writing key %q: its secret changed %d times while this write looked at it; try again", key, maxRounds)
}

// setValue puts value in the Secret. Secrets keep bytes as they are, so any value
// (UTF-8 or not) round-trips exactly.
func setValue(sec *corev1.Secret, value []byte) {
	sec.Data = map[string][]byte{ValueField: value}
	sec.StringData = nil
}

// object is a new Secret for key.
func (s *Store) object(key string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        SecretName(key),
			Namespace:   s.namespace,
			Labels:      map[string]string{ManagedByLabel: ManagedByValue},
			Annotations: map[string]string{KeyAnnotation: key},
		},
		Type: SecretType,
	}
}

// Del deletes the Secret of key and says whether there was one. The delete is
// conditional on the resourceVersion read, so that it removes the value it looked
// at and never one written after.
func (s *Store) Del(ctx context.Context, key string) (bool, error) {
	for range maxRounds {
		sec, err := s.read(ctx, key)
		if err != nil || sec == nil {
			return false, err
		}
		err = s.c.Delete(ctx, sec, client.Preconditions{UID: &sec.UID, ResourceVersion: &sec.ResourceVersion})
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		case apierrors.IsConflict(err):
			continue
		}
		return false, fmt.Errorf("deleting secret %s/%s of key %q: %w", s.namespace, sec.Name, key, err)
	}
	return false, fmt.Errorf("deleting key %q: its secret changed %d times while this delete looked at it; try again", key, maxRounds)
}

// Keys returns every key of the store, sorted.
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	var list corev1.SecretList
	if err := s.c.List(ctx, &list, client.InNamespace(s.namespace), client.MatchingLabels{ManagedByLabel: ManagedByValue}); err != nil {
		return nil, fmt.Errorf("listing the secrets of namespace %s labelled %s=%s: %w", s.namespace, ManagedByLabel, ManagedByValue, err)
	}
	keys := make([]string, 0, len(list.Items))
	for i := range list.Items {
		sec := &list.Items[i]
		key, ok := sec.Annotations[KeyAnnotation]
		// A labelled Secret of another type, without the annotation, or under
		// another name is not one of the store's: leave it out.
		if !ok || sec.Type != SecretType || sec.Name != SecretName(key) {
			continue
		}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys, nil
}
