package middleware

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
)

// The gates take no defaults of their own: the module fills every field
// from its Config, which is the one home of each default. A field that is
// required and missing is a wiring mistake, answered by failed.

// errMissing names a required field a constructor was given without.
func errMissing(field string) error {
	return fmt.Errorf("fiberchat middleware: %s is required", field)
}

// failed is the gate a constructor returns for a config it cannot use: it
// refuses every request with err, which the module's boundary logs and
// answers as a 500. A wiring mistake so fails closed and loudly, instead
// of a gate that lets requests through or panics on each one.
func failed(err error) fiber.Handler {
	return func(*fiber.Ctx) error { return err }
}
