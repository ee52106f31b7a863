package conformance

import "encoding/json"

// defaultsSchema asks for one field of each primitive type, each with a
// default (SEP-1034).
var defaultsSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"name":     map[string]any{"type": "string", "description": "User name", "default": "John Doe"},
		"age":      map[string]any{"type": "integer", "description": "User age", "default": 30},
		"score":    map[string]any{"type": "number", "description": "User score", "default": 95.5},
		"status":   map[string]any{"type": "string", "description": "User status", "enum": []string{"active", "inactive", "pending"}, "default": "active"},
		"verified": map[string]any{"type": "boolean", "description": "Verification status", "default": true},
	},
	"required": []string{},
}

// enumsSchema asks for the five kinds of enum field (SEP-1330): untitled
// and titled single select, the legacy enumNames form, and untitled and
// titled multi select.
var enumsSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"untitledSingle": map[string]any{
			"type": "string", "description": "Select one option",
			"enum": []string{"option1", "option2", "option3"},
		},
		"titledSingle": map[string]any{
			"type": "string", "description": "Select one option with titles",
			"oneOf": titled("Option", "value"),
		},
		"legacyEnum": map[string]any{
			"type": "string", "description": "Select one option (legacy)",
			"enum":      []string{"opt1", "opt2", "opt3"},
			"enumNames": []string{"Option One", "Option Two", "Option Three"},
		},
		"untitledMulti": map[string]any{
			"type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3,
			"items": map[string]any{"type": "string", "enum": []string{"option1", "option2", "option3"}},
		},
		"titledMulti": map[string]any{
			"type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3,
			"items": map[string]any{"anyOf": titled("Choice", "value")},
		},
	},
	"required": []string{},
}

// titled lists three const/title pairs: First kind, Second kind, Third kind.
func titled(kind, prefix string) []any {
	var out []any
	for i, ord := range []string{"First", "Second", "Third"} {
		out = append(out, map[string]any{"const": prefix + string(rune('1'+i)), "title": ord + " " + kind})
	}
	return out
}

// jsonSchema202012 is an input schema using the JSON Schema 2020-12
// vocabulary that a gateway must pass on untouched (SEP-1613, SEP-2106):
// $schema, $defs with $anchor, $ref, composition, conditionals and
// additionalProperties.
var jsonSchema202012 = json.RawMessage(`{
	"$schema": "https://json-schema.org/draft/2020-12/schema",
	"type": "object",
	"$defs": {
		"address": {
			"$anchor": "addressDef",
			"type": "object",
			"properties": {"street": {"type": "string"}, "city": {"type": "string"}}
		}
	},
	"properties": {
		"name": {"type": "string"},
		"address": {"$ref": "#/$defs/address"},
		"contactMethod": {"type": "string", "enum": ["phone", "email"]},
		"phone": {"type": "string"},
		"email": {"type": "string"}
	},
	"allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
	"if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
	"then": {"required": ["phone"]},
	"else": {"required": ["email"]},
	"additionalProperties": false
}`)
