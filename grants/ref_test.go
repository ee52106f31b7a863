package grants

import "strings"

// refMatch is the reference glob matcher the real one is checked against:
// a memoised recursion over segments that reads like the definition. "**"
// as a whole segment matches zero or more segments; any other segment is
// matched by refSegment.
func refMatch(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	return memoMatch(len(ps), len(xs), func(i, j int, match func(i, j int) bool) bool {
		switch {
		case i == len(ps):
			return j == len(xs)
		case ps[i] == "**":
			return match(i+1, j) || j < len(xs) && match(i, j+1)
		}
		return j < len(xs) && refSegment(ps[i], xs[j]) && match(i+1, j+1)
	})
}

// refSegment is the reference single-segment matcher: '*' matches any run of
// bytes and every other byte matches only itself.
func refSegment(pattern, s string) bool {
	return memoMatch(len(pattern), len(s), func(i, j int, match func(i, j int) bool) bool {
		switch {
		case i == len(pattern):
			return j == len(s)
		case pattern[i] == '*':
			return match(i+1, j) || j < len(s) && match(i, j+1)
		}
		return j < len(s) && pattern[i] == s[j] && match(i+1, j+1)
	})
}

// memoMatch runs the recursion step from (0, 0), remembering each (i, j)
// with 0 <= i <= n and 0 <= j <= m so that no pair is solved twice.
func memoMatch(n, m int, step func(i, j int, match func(i, j int) bool) bool) bool {
	const unknown, no, yes = 0, 1, 2
	memo := make([]byte, (n+1)*(m+1))
	var match func(i, j int) bool
	match = func(i, j int) bool {
		k := i*(m+1) + j
		if memo[k] == unknown {
			memo[k] = no
			if step(i, j, match) {
				memo[k] = yes
			}
		}
		return memo[k] == yes
	}
	return match(0, 0)
}

// refDecide is the reference decision: the contract's rule, written out
// directly over the configured rules.
func refDecide(rules []Rule, c Caller, kind Kind, connector, name string, readOnly bool) Decision {
	if connector == "" || strings.Contains(connector, "/") {
		return Decision{}
	}
	for i, r := range rules {
		if refApplies(r, c) && refRuleAllows(r, kind, connector, name, readOnly) {
			return Decision{Allowed: true, Rule: i + 1}
		}
	}
	return Decision{}
}

// refApplies reports whether a rule is for the caller.
func refApplies(r Rule, c Caller) bool {
	if c.ID == "" {
		return false
	}
	for _, s := range r.Sources {
		if s == "*" || s == "user:"+c.ID {
			return true
		}
		for _, g := range c.Groups {
			if s == "group:"+g {
				return true
			}
		}
	}
	return false
}

// refRuleAllows reports whether a rule that applies allows the item.
func refRuleAllows(r Rule, kind Kind, connector, name string, readOnly bool) bool {
	if kind == Tools && r.Operations == ReadOnly && !readOnly {
		return false
	}
	inConnectors := false
	for _, c := range r.Connectors {
		inConnectors = inConnectors || refSegment(c, connector)
	}
	if len(r.Connectors) > 0 && !inConnectors {
		return false
	}
	pats, ok := map[Kind][]string{Tools: r.Tools, Resources: r.Resources, Templates: r.Templates, Prompts: r.Prompts}[kind]
	if !ok {
		return false
	}
	if len(pats) == 0 {
		return len(r.Connectors) > 0
	}
	guarded := (kind == Resources || kind == Templates) && traversal(name)
	for _, p := range pats {
		if !(guarded && strings.Contains(p, "*")) && refMatch(p, connector+"/"+name) {
			return true
		}
	}
	return false
}
