package main

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// FloorResult is the "CR floor": what a lock cycle would cost with no operator at
// all, only the writes no design on this API can avoid. Each cycle is a LockRequest
// create, one Lease compare-and-swap (an update with the resourceVersion last
// read, as a grant is) and the LockRequest's delete, by clients goroutines at once.
type FloorResult struct {
	Clients int `json:"clients"`
	Cycles  int `json:"cycles"`
	// CyclesPerSec is cycles per second, all clients together.
	CyclesPerSec float64 `json:"cyclesPerSec"`
	Create       Summary `json:"create"`
	Update       Summary `json:"leaseUpdate"`
	Delete       Summary `json:"delete"`
	// CPU is what the cycles cost the control plane and this process, when measured.
	CPU *CPUCost `json:"cpu,omitempty"`
}

// runFloor measures the CR floor while no operator runs (before the first starts,
// and again after it stopped), so that nothing decides about the LockRequests it
// creates (they carry no finalizer, so their delete is
// immediate). Each client compare-and-swaps a Lease of its own. meter, when not
// nil, measures the cycles' CPU.
func runFloor(ctx context.Context, c client.Client, namespace string, clients, cycles int, meter *cpuMeter) (FloorResult, error) {
	creates, updates, deletes := newPerClient(clients), newPerClient(clients), newPerClient(clients)
	leases := make([]*coordinationv1.Lease, clients)
	for i := range leases {
		leases[i] = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("floor-%d", i)}}
		if err := c.Create(ctx, leases[i]); err != nil {
			return FloorResult{}, fmt.Errorf("CR floor: creating Lease %s: %w", leases[i].Name, err)
		}
	}
	cpuBefore, err := meter.read()
	if err != nil {
		return FloorResult{}, fmt.Errorf("CR floor: %w", err)
	}
	start := time.Now()
	err = benchutil.Parallel(ctx, clients, func(ctx context.Context, i int) error {
		for j := range cycles {
			lr := &lockingv1alpha1.LockRequest{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("floor-%d-%d", i, j)},
				Spec: lockingv1alpha1.LockRequestSpec{
					Project:   lockingv1alpha1.ProjectRef{Repository: "bench/floor", Path: fmt.Sprintf("k%d", i)},
					Workspace: "default",
					Pull:      &lockingv1alpha1.PullRequestRef{Number: int32(i*cycles + j + 1)},
					User:      lockingv1alpha1.UserRef{Username: benchUser},
				},
			}
			t := time.Now()
			if err := c.Create(ctx, lr); err != nil {
				return fmt.Errorf("CR floor: creating LockRequest %s: %w", lr.Name, err)
			}
			creates.add(i, time.Since(t))
			holder := lr.Name
			now := metav1.NowMicro()
			leases[i].Spec.HolderIdentity, leases[i].Spec.AcquireTime = &holder, &now
			t = time.Now()
			if err := c.Update(ctx, leases[i]); err != nil { // carries the resourceVersion: CAS
				return fmt.Errorf("CR floor: updating Lease %s: %w", leases[i].Name, err)
			}
			updates.add(i, time.Since(t))
			t = time.Now()
			if err := c.Delete(ctx, lr); err != nil {
				return fmt.Errorf("CR floor: deleting LockRequest %s: %w", lr.Name, err)
			}
			deletes.add(i, time.Since(t))
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return FloorResult{}, err
	}
	cpu, err := meter.costSince(cpuBefore, clients*cycles)
	if err != nil {
		return FloorResult{}, fmt.Errorf("CR floor: %w", err)
	}
	for _, lease := range leases {
		if err := c.Delete(ctx, lease); err != nil {
			return FloorResult{}, fmt.Errorf("CR floor: deleting Lease %s: %w", lease.Name, err)
		}
	}
	return FloorResult{
		Clients:      clients,
		Cycles:       clients * cycles,
		CyclesPerSec: rate(clients*cycles, elapsed),
		Create:       Summarize(creates.all()),
		Update:       Summarize(updates.all()),
		Delete:       Summarize(deletes.all()),
		CPU:          cpu,
	}, nil
}
