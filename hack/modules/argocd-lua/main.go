// Command argocd-lua runs Argo CD resource customizations (health.lua, actions) the way Argo CD
// does (util/lua/lua.go upstream): gopher-lua with only the package, base, table and a safe os
// library open, the object as the global `obj` (decoded as Argo CD decodes it), action parameters
// as `actionParams`, a one-second limit, and the returned table encoded with gopher-json.
//
//	argocd-lua test DIR...        every health_test.yaml and actions/action_test.yaml under DIR
//	                              (upstream layout resource_customizations/<group>/<kind>/); one
//	                              line per case, exit 1 if any fails
//	argocd-lua health SCRIPT      the object (YAML or JSON) on stdin → {"status","message"} JSON
//	argocd-lua action SCRIPT [NAME=VALUE...]   the object on stdin → the patched object as JSON
//	argocd-lua discovery SCRIPT   the object on stdin → the actions discovery.lua offers, as JSON
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

var validHealth = map[string]bool{"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true}

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// run executes script with obj (and params) and returns the value it returned, encoded as JSON.
func run(script string, obj map[string]any, params map[string]string) ([]byte, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.OsLibName, openSafeOs}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	p := l.NewTable()
	for k, v := range params {
		p.RawSetString(k, lua.LString(v))
	}
	l.SetGlobal("actionParams", p)
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	return luajson.Encode(ret)
}

func health(script string, obj map[string]any) (healthStatus, error) {
	out, err := run(script, obj, nil)
	if err != nil {
		return healthStatus{}, err
	}
	var hs healthStatus
	if err := json.Unmarshal(out, &hs); err != nil {
		return healthStatus{}, err
	}
	if !validHealth[hs.Status] {
		return healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

func action(script string, obj map[string]any, params map[string]string) (map[string]any, error) {
	out, err := run(script, obj, params)
	if err != nil {
		return nil, err
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("the action returned no object (an array of impacted resources is not supported here): %w", err)
	}
	return res, nil
}

type discovered struct {
	Name     string `json:"name"`
	Disabled bool   `json:"disabled,omitempty"`
	Params   []struct {
		Name    string `json:"name"`
		Default string `json:"default,omitempty"`
	} `json:"params,omitempty"`
}

func discovery(script string, obj map[string]any) ([]discovered, error) {
	out, err := run(script, obj, nil)
	if err != nil {
		return nil, err
	}
	if string(out) == "[]" { // an empty table
		return []discovered{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	res := []discovered{}
	for name, raw := range m {
		d := discovered{Name: name}
		if string(raw) != "[]" {
			if err := json.Unmarshal(raw, &d); err != nil {
				return nil, fmt.Errorf("action %s: %w", name, err)
			}
			d.Name = name
		}
		res = append(res, d)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res, nil
}

func readObj(path string) (map[string]any, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("%s: no object", path)
	}
	return obj, nil
}

type healthTests struct {
	Tests []struct {
		HealthStatus healthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string       `json:"inputPath"`
		Result    []discovered `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action               string            `json:"action"`
		InputPath            string            `json:"inputPath"`
		ExpectedOutputPath   string            `json:"expectedOutputPath"`
		ExpectedErrorMessage string            `json:"expectedErrorMessage"`
		Parameters           map[string]string `json:"parameters"`
	} `json:"actionTests"`
}

// testDirs runs the upstream test files under each dir; it reports every case and counts failures.
func testDirs(dirs []string) (passed, failed int, err error) {
	report := func(ok bool, name, detail string) {
		if ok {
			passed++
			fmt.Printf("ok   %s\n", name)
		} else {
			failed++
			fmt.Printf("FAIL %s: %s\n", name, detail)
		}
	}
	for _, root := range dirs {
		err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch d.Name() {
			case "health_test.yaml":
				return runHealthTests(filepath.Dir(path), report)
			case "action_test.yaml":
				return runActionTests(filepath.Dir(path), report)
			}
			return nil
		})
		if err != nil {
			return
		}
	}
	return
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.UnmarshalStrict(b, into)
}

func runHealthTests(dir string, report func(bool, string, string)) error {
	var t healthTests
	if err := readYAML(filepath.Join(dir, "health_test.yaml"), &t); err != nil {
		return err
	}
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return err
	}
	if len(t.Tests) == 0 {
		return fmt.Errorf("%s/health_test.yaml has no tests", dir)
	}
	for _, tc := range t.Tests {
		name := filepath.Join(dir, tc.InputPath)
		obj, err := readObj(name)
		if err != nil {
			return err
		}
		got, err := health(string(script), obj)
		switch {
		case err != nil:
			report(false, name, err.Error())
		case got != tc.HealthStatus:
			report(false, name, fmt.Sprintf("got %+v, want %+v", got, tc.HealthStatus))
		default:
			report(true, name, "")
		}
	}
	return nil
}

func runActionTests(dir string, report func(bool, string, string)) error {
	var t actionTests
	if err := readYAML(filepath.Join(dir, "action_test.yaml"), &t); err != nil {
		return err
	}
	if len(t.DiscoveryTests)+len(t.ActionTests) == 0 {
		return fmt.Errorf("%s/action_test.yaml has no tests", dir)
	}
	disc, err := os.ReadFile(filepath.Join(dir, "discovery.lua"))
	if err != nil {
		return err
	}
	for _, tc := range t.DiscoveryTests {
		name := "discovery " + filepath.Join(dir, tc.InputPath)
		obj, err := readObj(filepath.Join(dir, tc.InputPath))
		if err != nil {
			return err
		}
		got, err := discovery(string(disc), obj)
		want := tc.Result
		if want == nil {
			want = []discovered{}
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
		switch {
		case err != nil:
			report(false, name, err.Error())
		case !reflect.DeepEqual(got, want):
			report(false, name, fmt.Sprintf("got %+v, want %+v", got, want))
		default:
			report(true, name, "")
		}
	}
	for _, tc := range t.ActionTests {
		name := fmt.Sprintf("action %s %s", tc.Action, filepath.Join(dir, tc.InputPath))
		script, err := os.ReadFile(filepath.Join(dir, tc.Action, "action.lua"))
		if err != nil {
			return err
		}
		obj, err := readObj(filepath.Join(dir, tc.InputPath))
		if err != nil {
			return err
		}
		got, err := action(string(script), obj, tc.Parameters)
		if tc.ExpectedErrorMessage != "" {
			var apiErr *lua.ApiError
			msg := ""
			if errors.As(err, &apiErr) {
				msg = apiErr.Object.String()
			} else if err != nil {
				msg = err.Error()
			}
			report(err != nil && msg == tc.ExpectedErrorMessage, name, fmt.Sprintf("got error %q, want %q", msg, tc.ExpectedErrorMessage))
			continue
		}
		if err != nil {
			report(false, name, err.Error())
			continue
		}
		want, err := readObj(filepath.Join(dir, tc.ExpectedOutputPath))
		if err != nil {
			return err
		}
		// Compare as JSON values: the Lua VM turns every number into a float64.
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			report(false, name, fmt.Sprintf("got %s, want %s", g, w))
		} else {
			report(true, name, "")
		}
	}
	return nil
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(decodeValue(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), decodeValue(l, item))
		}
		return t
	}
	return lua.LNil
}

func params(args []string) (map[string]string, error) {
	p := map[string]string{}
	for _, a := range args {
		k, v, ok := cut(a, '=')
		if !ok {
			return nil, fmt.Errorf("parameter %q is not NAME=VALUE", a)
		}
		p[k] = v
	}
	return p, nil
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func main() {
	if err := mainErr(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		os.Exit(2)
	}
}

func mainErr(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: argocd-lua test DIR... | health SCRIPT | action SCRIPT [NAME=VALUE...] | discovery SCRIPT (object on stdin)")
	}
	if args[0] == "test" {
		passed, failed, err := testDirs(args[1:])
		if err != nil {
			return err
		}
		fmt.Printf("%d passed, %d failed\n", passed, failed)
		if failed > 0 || passed == 0 {
			os.Exit(1)
		}
		return nil
	}
	script, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	obj, err := readObj("-")
	if err != nil {
		return err
	}
	var out any
	switch args[0] {
	case "health":
		out, err = health(string(script), obj)
	case "action":
		var p map[string]string
		if p, err = params(args[2:]); err == nil {
			out, err = action(string(script), obj, p)
		}
	case "discovery":
		out, err = discovery(string(script), obj)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
