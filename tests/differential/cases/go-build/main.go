package main

import (
	"fmt"

	"example.com/greet/internal/words"
)

func main() {
	fmt.Println(words.Greeting("differential"))
}
