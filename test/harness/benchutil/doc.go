// Package benchutil is what the measuring programs (test/bench, test/scale and
// test/soak) share: a local control plane with the CRDs and one namespace installed
// (Env), a watch that timestamps what clients of the operator wait for (Observer),
// goroutine fan-out (Parallel), and the machine and results they report (Machine,
// Row). It holds no measurement of its own.
package benchutil
