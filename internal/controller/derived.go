package controller

import lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"

// The status fields that only repeat what an object's spec and name say. The
// operator's informer cache leaves them out (operator.CacheOptions): the
// reconciler writes them again with every status write, and sets a ProjectLock's
// back on every read, before it compares the status it would write with the one
// shown. The list lives here, beside the code that writes them.

// DropDerivedRequestStatus clears lockKey, lockName and owner of a LockRequest's
// status: every status write sets them from the spec (applyState), and no decision
// reads them.
func DropDerivedRequestStatus(lr *lockingv1alpha1.LockRequest) {
	lr.Status.LockKey, lr.Status.LockName, lr.Status.Owner = "", "", ""
}

// DropDerivedProjectLockStatus clears lockKey and leaseName of a ProjectLock's
// status; restoreDerivedStatus sets them again.
func DropDerivedProjectLockStatus(pl *lockingv1alpha1.ProjectLock) {
	pl.Status.LockKey, pl.Status.LeaseName = "", ""
}

// restoreDerivedStatus sets again what DropDerivedProjectLockStatus cleared, once
// a status has been written (it always has the Locked condition): the key from
// the spec, and the Lease's name, which is the ProjectLock's (projectLockStatus).
func restoreDerivedStatus(pl *lockingv1alpha1.ProjectLock) {
	if pl.Status.LockKey == "" && len(pl.Status.Conditions) > 0 {
		pl.Status.LockKey = pl.Spec.Key().String()
		pl.Status.LeaseName = pl.Name
	}
}
