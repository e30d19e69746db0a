package main

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// baselineWarmup is how many untimed Lease cycles run before the baseline, so that
// connection set-up and the API server's first-request costs are not measured.
const baselineWarmup = 5

// BaselineResult is what the API server does with raw Lease writes: the physical
// limit of any lock built on Leases, measured in the same run as the operator.
type BaselineResult struct {
	Clients int `json:"clients"`
	Cycles  int `json:"cycles"`
	// CreateUpdatePerSec is DESIGN's baseline: Lease create followed by an update
	// that compare-and-swaps with the resourceVersion the create returned, per second,
	// all clients together.
	CreateUpdatePerSec float64 `json:"createUpdateCyclesPerSec"`
	// FullCyclePerSec adds the Lease delete to each cycle (a like-for-like baseline for
	// a lock cycle, which ends with the release): cycles / (create+update time +
	// delete time).
	FullCyclePerSec float64 `json:"createUpdateDeleteCyclesPerSec"`
	CreateUpdateSec float64 `json:"createUpdateSeconds"`
	DeleteSec       float64 `json:"deleteSeconds"`
	Create          Summary `json:"create"`
	Update          Summary `json:"update"`
	Delete          Summary `json:"delete"`
	// SerialCreate and SerialUpdate are the latencies of one client alone, one
	// request after the other: the floor of any chain of dependent writes, such as
	// the operator's create-ProjectLock → create-Lease → write-status for a grant.
	SerialCreate Summary `json:"serialCreate"`
	SerialUpdate Summary `json:"serialUpdate"`
}

// runBaseline runs clients goroutines that each create and then update (by
// compare-and-swap) cycles Leases of their own, then deletes them all the same way
// (with a resourceVersion precondition), timing every request. Before that, one
// client alone does serial such cycles.
func runBaseline(ctx context.Context, c client.Client, namespace string, clients, cycles, serial int) (BaselineResult, error) {
	if err := baselineWarm(ctx, c, namespace); err != nil {
		return BaselineResult{}, err
	}
	serialCreates, serialUpdates, err := baselineSerial(ctx, c, namespace, serial)
	if err != nil {
		return BaselineResult{}, err
	}
	leases := make([][]*coordinationv1.Lease, clients)
	creates, updates, deletes := newPerClient(clients), newPerClient(clients), newPerClient(clients)

	start := time.Now()
	err = benchutil.Parallel(ctx, clients, func(ctx context.Context, i int) error {
		for j := range cycles {
			lease, err := createAndUpdateLease(ctx, c, namespace, fmt.Sprintf("baseline-%d-%d", i, j), creates, updates, i)
			if err != nil {
				return err
			}
			leases[i] = append(leases[i], lease)
		}
		return nil
	})
	createUpdate := time.Since(start)
	if err != nil {
		return BaselineResult{}, fmt.Errorf("baseline: %w", err)
	}

	start = time.Now()
	err = benchutil.Parallel(ctx, clients, func(ctx context.Context, i int) error {
		for _, lease := range leases[i] {
			t := time.Now()
			if err := deleteLease(ctx, c, lease); err != nil {
				return err
			}
			deletes.add(i, time.Since(t))
		}
		return nil
	})
	del := time.Since(start)
	if err != nil {
		return BaselineResult{}, fmt.Errorf("baseline: %w", err)
	}

	total := clients * cycles
	return BaselineResult{
		Clients:            clients,
		Cycles:             total,
		CreateUpdatePerSec: rate(total, createUpdate),
		FullCyclePerSec:    rate(total, createUpdate+del),
		CreateUpdateSec:    createUpdate.Seconds(),
		DeleteSec:          del.Seconds(),
		Create:             Summarize(creates.all()),
		Update:             Summarize(updates.all()),
		Delete:             Summarize(deletes.all()),
		SerialCreate:       Summarize(serialCreates),
		SerialUpdate:       Summarize(serialUpdates),
	}, nil
}

// baselineSerial times n Lease create+update cycles of one client alone, deleting
// each Lease (untimed) before the next cycle.
func baselineSerial(ctx context.Context, c client.Client, namespace string, n int) (creates, updates []time.Duration, err error) {
	cs, us := newPerClient(1), newPerClient(1)
	for j := range n {
		lease, err := createAndUpdateLease(ctx, c, namespace, fmt.Sprintf("baseline-serial-%d", j), cs, us, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("serial baseline: %w", err)
		}
		if err := deleteLease(ctx, c, lease); err != nil {
			return nil, nil, fmt.Errorf("serial baseline: %w", err)
		}
	}
	return cs.all(), us.all(), nil
}

// baselineWarm runs a few untimed Lease cycles.
func baselineWarm(ctx context.Context, c client.Client, namespace string) error {
	scratch := newPerClient(1)
	for j := range baselineWarmup {
		lease, err := createAndUpdateLease(ctx, c, namespace, fmt.Sprintf("baseline-warmup-%d", j), scratch, scratch, 0)
		if err != nil {
			return fmt.Errorf("baseline warm-up: %w", err)
		}
		if err := deleteLease(ctx, c, lease); err != nil {
			return fmt.Errorf("baseline warm-up: %w", err)
		}
	}
	return nil
}

// createAndUpdateLease creates Lease name, then updates it with the resourceVersion
// the create returned (a compare-and-swap, as the operator's grants are), and records
// both latencies as client i's. It returns the Lease as last written.
func createAndUpdateLease(ctx context.Context, c client.Client, namespace, name string, creates, updates perClient, i int) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	t := time.Now()
	if err := c.Create(ctx, lease); err != nil {
		return nil, fmt.Errorf("creating Lease %s: %w", name, err)
	}
	creates.add(i, time.Since(t))

	holder := "baseline/" + name
	now := metav1.NowMicro()
	lease.Spec.HolderIdentity, lease.Spec.AcquireTime, lease.Spec.RenewTime = &holder, &now, &now
	t = time.Now()
	if err := c.Update(ctx, lease); err != nil { // carries lease.ResourceVersion: CAS
		return nil, fmt.Errorf("updating Lease %s: %w", name, err)
	}
	updates.add(i, time.Since(t))
	return lease, nil
}

// deleteLease deletes lease if it is still at the resourceVersion last written.
func deleteLease(ctx context.Context, c client.Client, lease *coordinationv1.Lease) error {
	rv := lease.ResourceVersion
	if err := c.Delete(ctx, lease, client.Preconditions{ResourceVersion: &rv}); err != nil {
		return fmt.Errorf("deleting Lease %s: %w", lease.Name, err)
	}
	return nil
}

// serialBeside times serial Lease writes one at a time beside another measurement,
// one sample per call: the unit of the latency targets measured at the same moments
// as what it divides, since the API server's pace drifts over a run. Each sample is
// a create, the timed compare-and-swap update (the serial Lease write of the
// baseline) and an untimed delete; the Leases carry no label of the operator's, so
// its informers never see them.
type serialBeside struct {
	c         client.Client
	namespace string
	prefix    string
	creates   perClient
	updates   perClient
}

func newSerialBeside(c client.Client, namespace, prefix string) *serialBeside {
	return &serialBeside{c: c, namespace: namespace, prefix: prefix, creates: newPerClient(1), updates: newPerClient(1)}
}

// sample times one serial Lease write.
func (s *serialBeside) sample(ctx context.Context) error {
	lease, err := createAndUpdateLease(ctx, s.c, s.namespace, fmt.Sprintf("%s-%d", s.prefix, len(s.updates[0])), s.creates, s.updates, 0)
	if err != nil {
		return fmt.Errorf("serial Lease write beside the measurement: %w", err)
	}
	return deleteLease(ctx, s.c, lease)
}

// summary is the serial Lease writes' latencies.
func (s *serialBeside) summary() Summary { return Summarize(s.updates.all()) }
