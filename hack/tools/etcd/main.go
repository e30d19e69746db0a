// Command etcd is the etcd server built from Go modules, so that the local control
// plane (envtest, e2e, make run) needs no prebuilt download. It is etcd's own main,
// nothing more.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
