package differ

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// stdDecode is what decodeJSON must agree with: encoding/json's Decoder
// with UseNumber, one value and nothing after it.
func stdDecode(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

var jsonSeeds = []string{
	`{}`, `[]`, ` {"a":1} `, `{"a":[1,2,{"b":null}],"c":true,"d":false}`, `"x"`, `1`, `-0.5e+10`, `1E5`,
	`{"a":1}{"b":2}`, `{"a":1,}`, `[1,]`, `[01]`, `-`, `1.`, `.5`, `1e`, `tru`, `nul`, `{"a" 1}`, `{a:1}`,
	`"\u00e9\n\t\"\\\/\b\f\r"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d"`, `"\u12"`, `"\x"`,
	"\"a\xffb\"", "\"\xe9t\xe9\"", "\"tab\there\"", `"unterminated`, `{"a":1,"a":2}`, `[[[[[]]]]]`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), `1 2`, "\n[\r\n1\t]\n", `"\u0000"`, `{"é":"ü"}`,
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		got, gok := decodeJSON([]byte(s))
		want, wok := stdDecode([]byte(s))
		if gok != wok || gok && !reflect.DeepEqual(got, want) {
			t.Errorf("decodeJSON(%.60q) = %.200s, %v; encoding/json: %.200s, %v", s, fmt.Sprintf("%#v", got), gok, fmt.Sprintf("%#v", want), wok)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gok := decodeJSON(b)
		want, wok := stdDecode(b)
		if gok != wok || gok && !reflect.DeepEqual(got, want) {
			t.Errorf("decodeJSON(%.200q) = %.200s, %v; encoding/json: %.200s, %v", b, fmt.Sprintf("%#v", got), gok, fmt.Sprintf("%#v", want), wok)
		}
	})
}

// BenchmarkDecodeJSON: one answer of the benchmark's backend, by the
// shadow's parser and by encoding/json.
func BenchmarkDecodeJSON(b *testing.B) {
	body := []byte(`{"id":42,"name":"user42","email":"user42@example.com","plan":"free","tags":["beta","eu"],"cart":[{"sku":"sku-42-0","qty":3,"price":3.94},{"sku":"sku-42-1","qty":4,"price":4.07},{"sku":"sku-42-2","qty":1,"price":4.2},{"sku":"sku-42-3","qty":2,"price":4.33},{"sku":"sku-42-4","qty":3,"price":4.46}],"total":40.28,"served_at":"2026-11-29T22:10:00.123456Z","request_id":"9f1c2e"}` + "\n")
	b.Run("differ", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodeJSON(body)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			stdDecode(body)
		}
	})
}
