package kubectllock

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

var now = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func request(name string, pull int32, user string, mutate func(*lockingv1alpha1.LockRequest)) lockingv1alpha1.LockRequest {
	lr := lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc"},
			User:    lockingv1alpha1.UserRef{Username: user},
		},
	}
	if pull > 0 {
		lr.Spec.Pull = &lockingv1alpha1.PullRequestRef{Number: pull}
	}
	lr.Status.Owner = lr.Spec.Owner()
	mutate(&lr)
	return lr
}

func TestRenderLocks(t *testing.T) {
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(now.Add(d)); return &m }
	enq := func(d time.Duration) *metav1.MicroTime { m := metav1.NewMicroTime(now.Add(d)); return &m }
	vpc := lockclient.LockInfo{
		Key: lockkey.New("acme/infra", "modules/vpc", "default", ""),
		Holder: ptr(request("pr42-vpc", 42, "alice", func(lr *lockingv1alpha1.LockRequest) {
			lr.Status.FencingToken, lr.Status.AcquiredTime = "581", at(-5*time.Minute)
		})),
		Queue: []lockingv1alpha1.LockRequest{
			request("pr57-vpc", 57, "bob", func(lr *lockingv1alpha1.LockRequest) {
				lr.Spec.Priority, lr.Status.Position, lr.Status.EnqueuedTime = lockingv1alpha1.PriorityHigh, 1, enq(-2*time.Minute)
			}),
			request("u-carol-vpc", 0, "carol", func(lr *lockingv1alpha1.LockRequest) {
				lr.Spec.Priority, lr.Status.Position, lr.Status.EnqueuedTime = lockingv1alpha1.PriorityNormal, 2, enq(-30*time.Second)
			}),
			request("pr61-vpc", 61, "dave", func(*lockingv1alpha1.LockRequest) {}),
		},
	}
	dns := lockclient.LockInfo{
		Key: lockkey.New("acme/infra", "modules/dns", "prod", "dns"),
		Holder: ptr(request("u-erin-dns", 0, "erin", func(lr *lockingv1alpha1.LockRequest) {
			lr.Status.FencingToken, lr.Status.AcquiredTime, lr.Status.ExpiresTime = "590", at(-3*time.Hour), at(21*time.Hour)
		})),
	}
	waiting := lockclient.LockInfo{
		Key:   lockkey.New("acme/infra", ".", "default", ""),
		Queue: []lockingv1alpha1.LockRequest{request("pr7-root", 7, "frank", func(*lockingv1alpha1.LockRequest) {})},
	}
	infos := []lockclient.LockInfo{dns, vpc, waiting}

	for _, tc := range []struct {
		name string
		wide bool
		want string
	}{
		{"narrow", false, `
KEY                              HOLDER         PULL  TOKEN  AGE  QUEUE
acme/infra/modules/dns/prod/dns  erin           -     590    3h   0
acme/infra/modules/vpc/default/  acme/infra#42  42    581    5m   3
  1. waiting (High)              acme/infra#57  57    -      2m
  2. waiting (Normal)            carol          -     -      30s
  pending (Normal)               acme/infra#61  61    -      60m
acme/infra/./default/            <none>         -     -      -    1
  pending (Normal)               acme/infra#7   7     -      60m
`},
		{"wide", true, `
KEY                              HOLDER         PULL  TOKEN  AGE  QUEUE  USER   EXPIRES  REQUEST
acme/infra/modules/dns/prod/dns  erin           -     590    3h   0      erin   in 21h   u-erin-dns
acme/infra/modules/vpc/default/  acme/infra#42  42    581    5m   3      alice  -        pr42-vpc
  1. waiting (High)              acme/infra#57  57    -      2m          bob    -        pr57-vpc
  2. waiting (Normal)            carol          -     -      30s         carol  -        u-carol-vpc
  pending (Normal)               acme/infra#61  61    -      60m         dave   -        pr61-vpc
acme/infra/./default/            <none>         -     -      -    1      -      -        -
  pending (Normal)               acme/infra#7   7     -      60m         frank  -        pr7-root
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := renderLocks(&b, infos, now, tc.wide); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(strings.TrimPrefix(tc.want, "\n"), b.String()); diff != "" {
				t.Errorf("table (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
