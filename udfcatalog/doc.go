// Package udfcatalog describes user-defined functions: their names, kinds,
// parameters and results as Arrow types, and a registry instance that holds
// them. It also owns the canonical text form of Arrow types that UDF
// declarations and Python introspection use, and the rules by which an
// input column may stand in for a declared parameter.
//
// The package imports no other fletch package, so every executor and the
// Flight surface can share its types.
package udfcatalog
