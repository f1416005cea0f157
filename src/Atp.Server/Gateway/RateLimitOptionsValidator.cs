using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// Validates <see cref="AtpOptions.RateLimits"/> and its edition limits at start: data annotations on nested objects are
/// not checked by <c>ValidateDataAnnotations</c>, and a zero limit would make a token bucket refuse everything.
/// </summary>
internal sealed class RateLimitOptionsValidator : IValidateOptions<AtpOptions>
{
    public ValidateOptionsResult Validate(string? name, AtpOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        Check(options.RateLimits, "Atp:RateLimits", failures);
        Check(options.RateLimits.Default, "Atp:RateLimits:Default", failures);
        Check(options.RateLimits.Enterprise, "Atp:RateLimits:Enterprise", failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Check(object section, string path, List<string> failures)
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(section, new ValidationContext(section), results, validateAllProperties: true))
        {
            failures.AddRange(results.Select(r => $"{path}:{string.Join(',', r.MemberNames)}: {r.ErrorMessage}"));
        }
    }
}
