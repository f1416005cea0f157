using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atp.Server.Integrity;

/// <summary>
/// Validates <see cref="AtpOptions.Integrity"/> (the checkpoint interval and the seal batch size) at start: data
/// annotations on nested objects are not checked by <c>ValidateDataAnnotations</c>.
/// </summary>
internal sealed class IntegrityOptionsValidator : IValidateOptions<AtpOptions>
{
    public ValidateOptionsResult Validate(string? name, AtpOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var results = new List<ValidationResult>();
        return Validator.TryValidateObject(options.Integrity, new ValidationContext(options.Integrity), results, validateAllProperties: true)
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(results.Select(r => $"Atp:Integrity:{string.Join(',', r.MemberNames)}: {r.ErrorMessage}"));
    }
}
