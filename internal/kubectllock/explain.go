package kubectllock

import (
	"errors"
	"fmt"
	"regexp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// notInstalled is what to do about a cluster without the CRDs.
const notInstalled = "the LockRequest CRD is not installed in this cluster: install the chart or `kubectl apply -f config/crd/bases`"

// permissions says what each command needs, for the message about a Forbidden error.
var permissions = map[string]string{
	"list":         "get and list on lockrequests and projectlocks (locking.runatlantis.io)",
	"acquire":      "create, get, watch and delete on lockrequests (locking.runatlantis.io)",
	"release":      "get, watch, delete and list on lockrequests, and get on projectlocks (locking.runatlantis.io)",
	"force-unlock": "get, list and watch on lockrequests and projectlocks, and delete on projectlocks (locking.runatlantis.io)",
}

// forbidden matches the RBAC authorizer's message, which names what was refused.
var forbidden = regexp.MustCompile(`cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)")?`)

// explain turns an error into what a person can act on: a missing CRD, a missing
// permission (which verb on which resource), or the error itself.
func explain(err error, cmd string) string {
	var status apierrors.APIStatus
	switch {
	case errors.Is(err, lockclient.ErrNotInstalled):
		return notInstalled
	case apierrors.IsForbidden(err) && errors.As(err, &status):
		msg := status.Status().Message
		m := forbidden.FindStringSubmatch(msg)
		if m == nil {
			return fmt.Sprintf("permission denied: %s\n`kubectl lock %s` needs %s.", msg, cmd, permissions[cmd])
		}
		resource, where := m[2], "cluster-wide"
		if m[3] != "" {
			resource += "." + m[3]
		}
		if m[4] != "" {
			where = "in namespace " + m[4]
		}
		return fmt.Sprintf("permission denied: you may not %s %s %s.\n"+
			"`kubectl lock %s` needs %s; ask a cluster admin for a Role and RoleBinding that grant it.\n(the API server said: %s)",
			m[1], resource, where, cmd, permissions[cmd], msg)
	}
	return err.Error()
}
