package words

import "strings"

// Greeting says hello to name, in capitals.
func Greeting(name string) string {
	return "hello, " + strings.ToUpper(name)
}
