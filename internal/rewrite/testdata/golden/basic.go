package basic

import (
	"errors"
	"fmt"
)

type T struct{ buf []int }

func (t *T) Get(i int) (int, error) {
	if i > 100 {
		return 0, errors.New("big")
	}
	return t.buf[i], nil
}

func (T) name(_ int, s string) string { return "T" + s + fmt.Sprint(1) }

func div(a, b int) int {
	x := a / b
	a %= b
	fmt.Println("div", x)
	return x + a
}

func depth(n int) int {
	if n == 0 {
		return 0
	}
	fmt.Sprint()
	return depth(n-1) + 1
}

func add(a, b int) int { return a + b }

func spin(n int) (s int) {
L:
	for n > 0 {
		n--
		if n == 7 {
			continue L
		}
		s++
	}
	for {
		break
	}
	fmt.Sprint()
	return
}

func conv(x any) (string, bool) {
	fmt.Sprint()
	s, ok := x.(string)
	return s + x.(fmt.Stringer).String(), ok
}

func alloc(n int, m uint8) ([]byte, map[int]int) {
	return make([]byte, n, n+int(m)), make(map[int]int, m)
}

func variadic(prefix string, xs ...int) error {
	fmt.Sprint(xs[1:], prefix[:len(xs)])
	return nil
}

func single() error {
	return fmt.Errorf("x")
}

func named() (n int, _ error) {
	defer func() { fmt.Sprint() }()
	return 1, nil
}

func generic[T any](x T) T { fmt.Sprint(); return x }

func withGoto(n int) int {
	fmt.Sprint()
again:
	for n > 0 {
		n--
		goto again
	}
	return n
}

func init() { fmt.Sprint() }

var counter int

var _ = counter

func at(b []byte, i int) byte { return b[i] }

func noResult(s []int) {
	fmt.Println(s)
}
