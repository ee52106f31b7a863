package grants

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// catalogItem is one entry of a random catalog.
type catalogItem struct {
	kind            Kind
	connector, name string
	readOnly        bool
}

// TestDecideMatchesReference: over thousands of random rule sets and
// catalogs, every decision, rule index included, equals the one the
// reference implementation reaches from the contract. (That a name is
// absent from a list exactly when a call to it is refused is the gateway's
// to prove: mcpmux asks Decide for both, and its tests check them against
// each other.)
func TestDecideMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260821, 1))
	var allowed, total int
	for round := range 4000 {
		rules := randomRules(rng)
		p, err := New(rules)
		if err != nil {
			t.Fatalf("round %d: New(%+v): %v", round, rules, err)
		}
		caller := randomCaller(rng)
		v := p.For(caller)
		for _, it := range randomCatalog(rng, 40) {
			got := v.Decide(it.kind, it.connector, it.name, it.readOnly)
			want := refDecide(rules, caller, it.kind, it.connector, it.name, it.readOnly)
			if got != want {
				t.Fatalf("round %d: rules %+v caller %+v item %+v: Decide = %+v, reference %+v", round, rules, caller, it, got, want)
			}
			total++
			if got.Allowed {
				allowed++
			}
		}
	}
	// A generator that almost never allows, or almost always does, would
	// make the property hold without testing anything.
	if allowed < total/20 || allowed > total*19/20 {
		t.Errorf("%d of %d items allowed; the generator is lopsided", allowed, total)
	}
	t.Logf("%d of %d items allowed", allowed, total)
}

// pick returns a random element of s.
func pick[T any](rng *rand.Rand, s []T) T {
	return s[rng.IntN(len(s))]
}

// randomString builds a string of up to max runes from alphabet.
func randomString(rng *rand.Rand, alphabet []string, max int) string {
	var b strings.Builder
	for range rng.IntN(max + 1) {
		b.WriteString(pick(rng, alphabet))
	}
	return b.String()
}

var (
	propConnectors = []string{"a", "b", "ab", "a-b", "ba"}
	propNameRunes  = []string{"a", "b", "a", "b", "a", "/", "*", "-", ".", "%", "2", "e", "é", "о", "?", `\`}
	propPatRunes   = []string{"a", "b", "/", "*", "-", ".", "é", "/**/"}
	propHeads      = []string{"a", "b", "*", "a*", "*b", "a-*", "**", "ab"}
	propSources    = []string{"*", "user:alice", "user:bob", "group:g1", "group:g2", "user:group:g1"}
	propConnGlobs  = []string{"a", "b", "*", "a*", "a-*", "ab"}
)

// randomRules returns up to four valid rules.
func randomRules(rng *rand.Rand) []Rule {
	rules := make([]Rule, rng.IntN(5))
	for i := range rules {
		rules[i] = randomRule(rng)
	}
	return rules
}

// randomRule returns one valid rule.
func randomRule(rng *rand.Rand) Rule {
	r := Rule{}
	if rng.IntN(3) == 0 {
		r.Operations = ReadOnly
	}
	for range 1 + rng.IntN(2) {
		r.Sources = append(r.Sources, pick(rng, propSources))
	}
	for range rng.IntN(3) {
		r.Connectors = append(r.Connectors, pick(rng, propConnGlobs))
	}
	for _, list := range []*[]string{&r.Tools, &r.Resources, &r.Templates, &r.Prompts} {
		for range rng.IntN(3) {
			*list = append(*list, randomPattern(rng))
		}
	}
	if len(r.Connectors) == 0 && len(r.Tools)+len(r.Resources)+len(r.Templates)+len(r.Prompts) == 0 {
		r.Connectors = []string{pick(rng, propConnGlobs)}
	}
	return r
}

// randomPattern returns a valid item pattern.
func randomPattern(rng *rand.Rand) string {
	for {
		p := pick(rng, propHeads) + "/" + randomString(rng, propPatRunes, 5)
		if rng.IntN(10) == 0 {
			p = "**"
		}
		if ValidatePattern(p) == nil {
			return p
		}
	}
}

// randomCaller returns a caller, sometimes unidentified.
func randomCaller(rng *rand.Rand) Caller {
	c := Caller{ID: pick(rng, []string{"", "alice", "bob", "group:g1", "*", "g1"})}
	for range rng.IntN(3) {
		c.Groups = append(c.Groups, pick(rng, []string{"g1", "g2", "user:alice", "", "alice"}))
	}
	return c
}

// randomCatalog returns n random items, a few with invalid kinds or
// connectors.
func randomCatalog(rng *rand.Rand, n int) []catalogItem {
	kinds := []Kind{Tools, Resources, Templates, Prompts, Tools, Resources, "widgets"}
	conns := append([]string{"", "a/b", "c"}, propConnectors...)
	catalog := make([]catalogItem, n)
	for i := range catalog {
		catalog[i] = catalogItem{
			kind:      pick(rng, kinds),
			connector: pick(rng, conns),
			name:      randomString(rng, propNameRunes, 6),
			readOnly:  rng.IntN(2) == 0,
		}
	}
	return catalog
}
