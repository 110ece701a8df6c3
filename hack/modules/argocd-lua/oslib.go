package main

// The os library Argo CD gives scripts (util/lua/oslib_safe.go upstream): time and date only,
// nothing that reaches the file system, the environment or processes.

import (
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var safeOsFuncs = map[string]lua.LGFunction{"time": osTime, "date": osDate}

func openSafeOs(l *lua.LState) int {
	tabmod := l.RegisterModule(lua.OsLibName, safeOsFuncs)
	l.Push(tabmod)
	return 1
}

func safeOsLoader(l *lua.LState) int {
	mod := l.SetFuncs(l.NewTable(), safeOsFuncs)
	l.Push(mod)
	return 1
}

func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	tbl := l.CheckTable(1)
	field := func(k string, dflt int) int {
		if v, ok := l.GetField(tbl, k).(lua.LNumber); ok {
			return int(v)
		}
		return dflt
	}
	t := time.Date(field("year", 1970), time.Month(field("month", 1)), field("day", 1), field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(t.Unix()))
	return 1
}

// osDate supports what Argo CD's scripts use: "!%Y-%m-%dT%XZ"-style strftime formats and "*t".
func osDate(l *lua.LState) int {
	t := time.Now()
	cfmt := "%c"
	if l.GetTop() >= 1 {
		cfmt = l.CheckString(1)
		if strings.HasPrefix(cfmt, "!") {
			t = t.UTC()
			cfmt = cfmt[1:]
		}
		if l.GetTop() >= 2 {
			t = time.Unix(l.CheckInt64(2), 0)
		}
	}
	if strings.HasPrefix(cfmt, "*t") {
		ret := l.NewTable()
		for k, v := range map[string]int{"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(), "min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": t.YearDay()} {
			ret.RawSetString(k, lua.LNumber(v))
		}
		ret.RawSetString("isdst", lua.LFalse)
		l.Push(ret)
		return 1
	}
	l.Push(lua.LString(strftime(t, cfmt)))
	return 1
}

func strftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			b.WriteString(t.Format("2006"))
		case 'm':
			b.WriteString(t.Format("01"))
		case 'd':
			b.WriteString(t.Format("02"))
		case 'H':
			b.WriteString(t.Format("15"))
		case 'M':
			b.WriteString(t.Format("04"))
		case 'S':
			b.WriteString(t.Format("05"))
		case 'X':
			b.WriteString(t.Format("15:04:05"))
		case 'c':
			b.WriteString(t.Format(time.ANSIC))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}
