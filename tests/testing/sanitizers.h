#pragma once

namespace tokenstatus::testing {

// Whether this build is instrumented with AddressSanitizer (make test-sanitize builds every
// binary so, the server too). Its quarantine and shadow memory make a process's resident size
// say nothing about the code's own: tests do not assert memory bounds there (everything else
// they check still is).
inline constexpr bool kBuiltWithAddressSanitizer =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

}  // namespace tokenstatus::testing
