// kstatus: prints the status kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status) computes for each
// object read from stdin, the library Flux's kustomize-controller and helm-controller use to decide
// whether a resource is healthy. One JSON object per input line in, one JSON line out:
// {"status":"Current|InProgress|Failed|Terminating|Unknown","message":"..."}. Used by the tests
// (test/harness/kstatus.ts) to check Tenet's status conditions against the real library.
package main

import (
	"bufio"
	"encoding/json"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		obj := map[string]interface{}{}
		if err := utiljson.Unmarshal(in.Bytes(), &obj); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: input is not a JSON object: %v\n", err)
			os.Exit(2)
		}
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			_ = out.Encode(map[string]string{"status": "Error", "message": err.Error()})
			continue
		}
		_ = out.Encode(map[string]string{"status": res.Status.String(), "message": res.Message})
	}
}
