package lockkey_test

import (
	"fmt"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

func ExampleKey_String() {
	// New cleans the path as Atlantis does: "" is the root ".", and
	// "./modules/vpc/" is "modules/vpc".
	fmt.Println(lockkey.New("acme/infra", "", "default", "").String())
	fmt.Println(lockkey.New("acme/infra", "./modules/vpc/", "prod", "vpc").String())
	fmt.Println(lockkey.New("group/subgroup/infra", "envs/prod", "default", "").String())
	// Output:
	// acme/infra/./default/
	// acme/infra/modules/vpc/prod/vpc
	// group/subgroup/infra/envs/prod/default/
}

func ExampleParse() {
	k, err := lockkey.Parse("acme/infra/modules/vpc/prod/vpc")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("repository=%s path=%s workspace=%s project=%s\n", k.Repository, k.Path, k.Workspace, k.ProjectName)

	// A GitLab subgroup repository has more than two segments: name it.
	k, _ = lockkey.ParseWithRepository("group/subgroup/infra/./default/", "group/subgroup/infra")
	fmt.Printf("repository=%s path=%s\n", k.Repository, k.Path)

	_, err = lockkey.Parse("acme/infra/../default/")
	fmt.Println(err)
	// Output:
	// repository=acme/infra path=modules/vpc workspace=prod project=vpc
	// repository=group/subgroup/infra path=.
	// lock key "acme/infra/../default/": path ".." must not leave the repository
}

func ExampleKey_ObjectName() {
	k := lockkey.New("acme/infra", "modules/vpc", "default", "")
	fmt.Println(k.ObjectName())
	// Output:
	// acme-infra-modules-vpc-default-yj5hopsrbf
}

// NameOf names an object after any string, as the Redis gateway names the Secret of
// a pull status key. The names are pinned here: a change would orphan every Secret
// that a gateway already wrote.
func ExampleNameOf() {
	fmt.Println(lockkey.NameOf("github.com::acme/infra::12", "key"))
	fmt.Println(lockkey.NameOf("::", "key"))
	// Output:
	// github-com-acme-infra-12-skv6uzlm4q
	// key-ofkgqvowe6
}
